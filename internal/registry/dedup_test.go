package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
)

// pushFunc pushes body (digest d) into repo one way a client does.
type pushFunc func(t *testing.T, reg *registry.Registry, repo string, d digest.Digest, body []byte)

var pushWays = map[string]pushFunc{
	"monolithic": func(t *testing.T, reg *registry.Registry, repo string, d digest.Digest, body []byte) {
		if _, err := reg.PutBlob(t.Context(), repo, d, int64(len(body)), bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	},
	"streaming": func(t *testing.T, reg *registry.Registry, repo string, d digest.Digest, body []byte) {
		ctx := t.Context()
		u, _ := reg.StartUpload(ctx, repo)
		if _, err := reg.WriteUpload(ctx, repo, u.ID, -1, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.CommitUpload(ctx, repo, u.ID, d, -1, 0, nil); err != nil {
			t.Fatal(err)
		}
	},
	"chunked": func(t *testing.T, reg *registry.Registry, repo string, d digest.Digest, body []byte) {
		ctx := t.Context()
		u, _ := reg.StartUpload(ctx, repo)
		for off := 0; off < len(body); off += 30 << 10 {
			end := min(off+30<<10, len(body))
			if _, err := reg.WriteUpload(ctx, repo, u.ID, int64(off), bytes.NewReader(body[off:end])); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := reg.CommitUpload(ctx, repo, u.ID, d, -1, 0, nil); err != nil {
			t.Fatal(err)
		}
	},
}

// storedBytes sums the sizes of every blob object in the store.
func storedBytes(t *testing.T, bs storage.BlobStore) (int64, int) {
	t.Helper()
	objs, err := bs.List(t.Context(), "blobs/", storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range objs {
		n += o.Size
	}
	return n, len(objs)
}

// TestOneCopyPerDigest pushes one blob to several repositories, by every
// upload style and by all of them mixed, small (under one part) and large
// (multipart): one object holds it, and every repository reads it back.
func TestOneCopyPerDigest(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, size := range []int{1000, 3 * part} {
				ways := []string{"monolithic", "streaming", "chunked"}
				for _, way := range append(ways, "mixed") {
					t.Run(fmt.Sprintf("%s %d B", way, size), func(t *testing.T) {
						t.Parallel()
						s := open(t)
						reg := newRegistryOn(t, s)
						body := randomBytes(t, size)
						d := digest.FromBytes(body)
						for i := range 6 {
							w := way
							if w == "mixed" {
								w = ways[i%len(ways)]
							}
							pushWays[w](t, reg, fmt.Sprintf("repo/%d", i), d, body)
						}
						if n, objs := storedBytes(t, s.blobs); n != int64(size) {
							t.Errorf("%d objects of %d bytes stored for one blob of %d", objs, n, size)
						}
						for i := range 6 {
							if got := readBlob(t, reg, fmt.Sprintf("repo/%d", i), d); !bytes.Equal(got, body) {
								t.Errorf("repo/%d reads %d bytes, not the blob", i, len(got))
							}
						}
					})
				}
			}
		})
	}
}

// TestConcurrentCommits commits one digest to 12 repositories at once, by
// every style: one copy wins, the others are discarded, all links read it.
func TestConcurrentCommits(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			reg := newRegistryOn(t, s)
			body := bytes.Repeat([]byte("shared base layer "), 3*part/18+1)
			d := digest.FromBytes(body)
			ways := []string{"monolithic", "streaming", "chunked"}
			var wg sync.WaitGroup
			for i := range 12 {
				wg.Go(func() { pushWays[ways[i%3]](t, reg, fmt.Sprintf("race/%d", i), d, body) })
			}
			wg.Wait()
			if n, objs := storedBytes(t, s.blobs); n != int64(len(body)) {
				t.Errorf("%d objects of %d bytes stored for one blob of %d", objs, n, len(body))
			}
			c, err := s.meta.GetContent(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 12 {
				repo := fmt.Sprintf("race/%d", i)
				b, err := reg.StatBlob(t.Context(), repo, d)
				if err != nil {
					t.Fatal(err)
				}
				if b.Key != c.Key {
					t.Errorf("%s links %s, the record names %s", repo, b.Key, c.Key)
				}
				if got := readBlob(t, reg, repo, d); !bytes.Equal(got, body) {
					t.Errorf("%s reads %d bytes, not the blob", repo, len(got))
				}
			}
			if !strings.HasPrefix(c.Key, "blobs/") {
				t.Errorf("record key %s", c.Key)
			}
		})
	}
}
