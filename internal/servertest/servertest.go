// Package servertest serves the whole registry, wired as `skiff serve`
// wires it (server.New, every route group), on an httptest server, for
// tests that drive it over HTTP with a real client library: the embedded
// backend in a temp dir, or the AWS stand-ins with a bucket and table of
// the test's own.
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

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
	stores, err := backend.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stores.Close() })
	srv, err := server.New(context.Background(), cfg, stores, httpapi.GroupAll, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler)
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://"), stores
}
