package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/pkg/oci"
)

func newRegistryOn(t *testing.T, s stores, opts ...registry.Option) *registry.Registry {
	t.Helper()
	reg, err := registry.New(s.blobs, s.meta, append([]registry.Option{registry.WithPartSize(part, minPart)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// artifact returns a manifest with no layers over config, unique by n.
func artifact(t *testing.T, config digest.Digest, configSize int, n int) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     oci.MediaTypeImageManifest,
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": configSize},
		"layers":        []any{},
		"annotations":   map[string]string{"n": fmt.Sprint(n)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRaces runs the races the spec lets clients start, on every backend.
func TestRaces(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("50 manifests to one tag", func(t *testing.T) {
				t.Parallel()
				racingTagPushes(t, newRegistryOn(t, open(t)))
			})
			t.Run("20 chunks at one offset", func(t *testing.T) {
				t.Parallel()
				racingChunks(t, newRegistryOn(t, open(t)))
			})
		})
	}
}

// racingTagPushes: 50 concurrent pushes of different manifests to the same
// tag leave the tag on one of them and every manifest readable by digest.
func racingTagPushes(t *testing.T, reg *registry.Registry) {
	ctx := context.Background()
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd, err := reg.PutBlob(ctx, "race/tag", digest.FromBytes(config), int64(len(config)), bytes.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	pushed := make([]digest.Digest, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := reg.PutManifest(ctx, "race/tag", oci.Reference{Tag: "latest"}, oci.MediaTypeImageManifest, artifact(t, cd.Digest, len(config), i), nil)
			if err != nil {
				t.Errorf("push %d: %v", i, err)
				return
			}
			pushed[i] = res.Digest
		}()
	}
	wg.Wait()
	m, err := reg.ResolveManifest(ctx, "race/tag", oci.Reference{Tag: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range pushed {
		found = found || d == m.Digest
		if _, err := reg.ResolveManifest(ctx, "race/tag", oci.Reference{Digest: d}); err != nil {
			t.Errorf("manifest %s: %v", d, err)
		}
	}
	if !found {
		t.Errorf("tag points at %s, which none of the pushes wrote", m.Digest)
	}
}

// racingChunks: of 20 PATCHes at the same offset exactly one wins, the
// others get 416, and the blob is intact.
func racingChunks(t *testing.T, reg *registry.Registry) {
	ctx := context.Background()
	u, err := reg.StartUpload(ctx, "race/chunks")
	if err != nil {
		t.Fatal(err)
	}
	chunks := make([][]byte, 20)
	for i := range chunks {
		chunks[i] = randomBytes(t, part+1000) // each writes a part
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []int
	for i := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := reg.WriteUpload(ctx, "race/chunks", u.ID, 0, bytes.NewReader(chunks[i]))
			var re *registry.RangeError
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
			case errors.As(err, &re) && re.Err.HTTPStatus() == 416:
			default:
				t.Errorf("writer %d: want success or 416, got %v", i, err)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("winners: got %v, want exactly one", winners)
	}
	want := chunks[winners[0]]
	b, err := reg.CommitUpload(ctx, "race/chunks", u.ID, digest.FromBytes(want), -1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, reg, "race/chunks", b.Digest); !bytes.Equal(got, want) {
		t.Fatal("blob is not the winner's chunk")
	}
}
