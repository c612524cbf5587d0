package server_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/servertest"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// ggcrServer is the whole registry (every route group) on an httptest
// server, on the embedded backend or on the AWS stand-ins.
func ggcrServer(t *testing.T, kind config.Backend) string {
	t.Helper()
	host, _ := ggcrServerWith(t, kind, func(*config.Config) {})
	return host
}

// ggcrServerWith is ggcrServer with cfg changed by change first; it also
// returns the stores.
func ggcrServerWith(t *testing.T, kind config.Backend, change func(*config.Config)) (string, backend.Stores) {
	t.Helper()
	cfg := servertest.Config(t, kind)
	change(&cfg)
	return servertest.Start(t, cfg)
}

// TestGGCRRemote drives the API with go-containerregistry's remote package
// (crane's library), in process: push an image and an index (blobs by
// streamed PATCH, layers mounted across repositories), pull them back by
// tag and digest, list tags and the catalog, find a referrer, delete.
func TestGGCRRemote(t *testing.T) {
	kinds := []config.Backend{config.BackendLocal}
	if testenv.HaveAWS(t) {
		kinds = append(kinds, config.BackendAWS)
	}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			host := ggcrServer(t, kind)
			ref := func(s string) name.Reference {
				r, err := name.ParseReference(host+"/"+s, name.Insecure)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			ctx := t.Context()
			opts := []remote.Option{remote.WithContext(ctx)}

			img, err := random.Image(3<<20, 3) // three 3 MiB layers
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref("ggcr/app:v1"), img, opts...); err != nil {
				t.Fatalf("push: %v", err)
			}
			want, _ := img.Digest()
			got, err := remote.Image(ref("ggcr/app:v1"), opts...)
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if d, _ := got.Digest(); d != want {
				t.Fatalf("pulled digest %s, pushed %s", d, want)
			}
			layers, err := got.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layers {
				// Compressed() reads the blob back and checks its digest.
				rc, err := l.Compressed()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					t.Fatalf("layer read back: %v", err)
				}
			}

			// The same image into another repository: its blobs are mounted.
			if err := remote.Write(ref("ggcr/copy:v1"), img, opts...); err != nil {
				t.Fatalf("push to a second repository: %v", err)
			}

			// An index of two platforms, and an artifact whose subject it is.
			idx, err := random.Index(1<<10, 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
			if err := remote.WriteIndex(ref("ggcr/app:multi"), idx, opts...); err != nil {
				t.Fatalf("push index: %v", err)
			}
			idxDigest, _ := idx.Digest()
			gotIdx, err := remote.Index(ref("ggcr/app@"+idxDigest.String()), opts...)
			if err != nil {
				t.Fatalf("pull index by digest: %v", err)
			}
			if m, _ := gotIdx.IndexManifest(); len(m.Manifests) != 2 {
				t.Fatalf("index has %d children, want 2", len(m.Manifests))
			}
			desc, err := remote.Head(ref("ggcr/app:multi"), opts...)
			if err != nil || desc.Digest != idxDigest {
				t.Fatalf("HEAD index: %v, %v", desc, err)
			}
			sig := mutate.Subject(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.skiff.test"),
				*desc).(v1.Image)
			sigDigest, _ := sig.Digest()
			if err := remote.Write(ref("ggcr/app@"+sigDigest.String()), sig, opts...); err != nil {
				t.Fatalf("push referrer: %v", err)
			}
			referrers, err := remote.Referrers(ref("ggcr/app@"+idxDigest.String()).Context().Digest(idxDigest.String()), opts...)
			if err != nil {
				t.Fatalf("referrers: %v", err)
			}
			if m, _ := referrers.IndexManifest(); len(m.Manifests) != 1 || m.Manifests[0].Digest != sigDigest {
				t.Fatalf("referrers of the index: %+v, want %s", m, sigDigest)
			}

			tags, err := remote.List(ref("ggcr/app:v1").Context(), opts...)
			if err != nil || !slices.Equal(tags, []string{"multi", "v1"}) {
				t.Fatalf("tags: %v, %v; want [multi v1]", tags, err)
			}
			reg, _ := name.NewRegistry(host, name.Insecure)
			repos, err := remote.Catalog(ctx, reg, opts...)
			if err != nil || !slices.Equal(repos, []string{"ggcr/app", "ggcr/copy"}) {
				t.Fatalf("catalog: %v, %v", repos, err)
			}

			if err := remote.Delete(ref("ggcr/copy@"+want.String()), opts...); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, err = remote.Image(ref("ggcr/copy@"+want.String()), opts...)
			var terr *transport.Error
			if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
				t.Fatalf("pull after delete: %v, want 404", err)
			}
			if _, err := remote.Image(ref("ggcr/app:v1"), opts...); err != nil {
				t.Fatalf("the other repository's copy after the delete: %v", err)
			}
		})
	}
}
