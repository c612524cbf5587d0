// Package servertest serves the whole registry, wired as `skiff serve`
// wires it (server.New, every route group), on an httptest server, for
// tests that drive it over HTTP with a real client library: the embedded
// backend in a temp dir, or the AWS stand-ins with a bucket and table of
// the test's own; and an upstream to copy from.
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/server"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// Config is the default configuration on kind: a data directory of t's
// own, or (aws) the stand-ins, with a fresh bucket and table created on
// open.
func Config(t testing.TB, kind config.Backend) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Backend, cfg.DataDir = kind, t.TempDir()
	if kind == config.BackendAWS {
		testenv.AWS(t)
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		name := "skiff-test-" + hex.EncodeToString(b)
		cfg.Bucket, cfg.Table, cfg.CreateResources = name, name, true
	}
	return cfg
}

// Start serves cfg until t ends and returns the server's host:port and
// its stores.
func Start(t testing.TB, cfg config.Config) (string, backend.Stores) {
	t.Helper()
	srv, stores := New(t, cfg)
	ts := httptest.NewServer(srv.Handler)
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://"), stores
}

// New opens cfg's stores and wires the registry over them, until t ends.
func New(t testing.TB, cfg config.Config) (*server.Server, backend.Stores) {
	t.Helper()
	stores, err := backend.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stores.Close() })
	srv, err := server.New(context.Background(), cfg, stores, httpapi.GroupAll, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return srv, stores
}

// Upstream is go-containerregistry's registry on an httptest server (an
// upstream to copy from), behind HTTP Basic auth when user is set, with a
// random image (2 layers) at each of refs (repo:tag); it returns its
// host:port and the images by ref.
func Upstream(t testing.TB, user, password string, refs ...string) (string, map[string]v1.Image) {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := reg
	if user != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			reg.ServeHTTP(w, r)
		})
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	host := strings.TrimPrefix(ts.URL, "http://")
	images := map[string]v1.Image{}
	for _, ref := range refs {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		var opts []remote.Option
		if user != "" {
			opts = append(opts, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
		}
		if err := remote.Write(r, img, opts...); err != nil {
			t.Fatal(err)
		}
		images[ref] = img
	}
	return host, images
}
