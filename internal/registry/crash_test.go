package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// errCrash is what every write returns once the simulated process died.
var errCrash = errors.New("injected crash")

// crasher counts write steps through the stores and, from step crashAt
// on, performs none: the process "died" just before that step. The steps
// it records name the write sequence of an operation.
type crasher struct {
	mu      sync.Mutex
	crashAt int // 0: never
	steps   []string
}

func (c *crasher) step(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, name)
	if c.crashAt > 0 && len(c.steps) >= c.crashAt {
		return fmt.Errorf("%s: %w", name, errCrash)
	}
	return nil
}

type crashBlobs struct {
	storage.BlobStore
	c *crasher
}

func (b crashBlobs) Put(ctx context.Context, key string, size int64, expect digest.Digest, r io.Reader) error {
	if err := b.c.step("blob.Put " + key); err != nil {
		return err
	}
	return b.BlobStore.Put(ctx, key, size, expect, r)
}

func (b crashBlobs) Delete(ctx context.Context, key string) error {
	if err := b.c.step("blob.Delete"); err != nil {
		return err
	}
	return b.BlobStore.Delete(ctx, key)
}

func (b crashBlobs) CreateMultipart(ctx context.Context, key string) (string, error) {
	if err := b.c.step("blob.CreateMultipart"); err != nil {
		return "", err
	}
	return b.BlobStore.CreateMultipart(ctx, key)
}

func (b crashBlobs) UploadPart(ctx context.Context, key, id string, n int, size int64, r io.Reader) (storage.Part, error) {
	if err := b.c.step(fmt.Sprintf("blob.UploadPart %d", n)); err != nil {
		return storage.Part{}, err
	}
	return b.BlobStore.UploadPart(ctx, key, id, n, size, r)
}

func (b crashBlobs) CompleteMultipart(ctx context.Context, key, id string, parts []storage.Part) error {
	if err := b.c.step("blob.CompleteMultipart"); err != nil {
		return err
	}
	return b.BlobStore.CompleteMultipart(ctx, key, id, parts)
}

func (b crashBlobs) AbortMultipart(ctx context.Context, key, id string) error {
	if err := b.c.step("blob.AbortMultipart"); err != nil {
		return err
	}
	return b.BlobStore.AbortMultipart(ctx, key, id)
}

type crashMeta struct {
	storage.MetaStore
	c *crasher
}

func (m crashMeta) PutBlob(ctx context.Context, repo string, b storage.Blob) error {
	if err := m.c.step("meta.PutBlob"); err != nil {
		return err
	}
	return m.MetaStore.PutBlob(ctx, repo, b)
}

func (m crashMeta) PutManifest(ctx context.Context, repo string, mf storage.Manifest) error {
	if err := m.c.step("meta.PutManifest"); err != nil {
		return err
	}
	return m.MetaStore.PutManifest(ctx, repo, mf)
}

func (m crashMeta) PutTag(ctx context.Context, repo string, t storage.Tag) error {
	if err := m.c.step("meta.PutTag " + t.Name); err != nil {
		return err
	}
	return m.MetaStore.PutTag(ctx, repo, t)
}

func (m crashMeta) PutReferrer(ctx context.Context, repo string, s digest.Digest, r storage.Referrer) error {
	if err := m.c.step("meta.PutReferrer"); err != nil {
		return err
	}
	return m.MetaStore.PutReferrer(ctx, repo, s, r)
}

func (m crashMeta) PutRepository(ctx context.Context, repo string) error {
	if err := m.c.step("meta.PutRepository"); err != nil {
		return err
	}
	return m.MetaStore.PutRepository(ctx, repo)
}

func (m crashMeta) CreateUpload(ctx context.Context, u storage.Upload) error {
	if err := m.c.step("meta.CreateUpload"); err != nil {
		return err
	}
	return m.MetaStore.CreateUpload(ctx, u)
}

func (m crashMeta) UpdateUpload(ctx context.Context, u storage.Upload, prev int64) error {
	if err := m.c.step("meta.UpdateUpload"); err != nil {
		return err
	}
	return m.MetaStore.UpdateUpload(ctx, u, prev)
}

// pushFixture is an image pushed the way clients do: a config blob
// monolithically, a layer in chunks (two parts and a tail), then the
// manifest by tag with a subject.
type pushFixture struct {
	config, layer []byte
	subject       digest.Digest
}

func newPushFixture(t *testing.T) pushFixture {
	return pushFixture{
		config:  []byte(`{"architecture":"arm64","os":"linux"}`),
		layer:   randomBytes(t, 2*part+minPart/2),
		subject: digest.FromString("a subject that is not pushed"),
	}
}

func (f pushFixture) manifest(t *testing.T) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}],"subject":{"mediaType":%q,"digest":%q,"size":10}}`,
		oci.MediaTypeImageManifest, digest.FromBytes(f.config), len(f.config), digest.FromBytes(f.layer), len(f.layer), oci.MediaTypeImageManifest, f.subject))
}

// push runs the whole push, stopping at the first error.
func (f pushFixture) push(ctx context.Context, t *testing.T, reg *registry.Registry) error {
	if _, err := reg.PutBlob(ctx, "crash/repo", digest.FromBytes(f.config), int64(len(f.config)), bytes.NewReader(f.config)); err != nil {
		return err
	}
	u, err := reg.StartUpload(ctx, "crash/repo")
	if err != nil {
		return err
	}
	for off := 0; off < len(f.layer)-minPart/2; off += part {
		if _, err := reg.WriteUpload(ctx, "crash/repo", u.ID, int64(off), bytes.NewReader(f.layer[off:off+part])); err != nil {
			return err
		}
	}
	rest := f.layer[2*part:]
	if _, err := reg.CommitUpload(ctx, "crash/repo", u.ID, digest.FromBytes(f.layer), 2*part, int64(len(rest)), bytes.NewReader(rest)); err != nil {
		return err
	}
	_, err = reg.PutManifest(ctx, "crash/repo", oci.Reference{Tag: "v1"}, oci.MediaTypeImageManifest, f.manifest(t), []string{"v1.0"})
	return err
}

// TestCrashPoints stops the write sequence of a push (blob commits and a
// manifest PUT) before each of its steps, on every backend, and checks
// what any client could then see: no tag naming a missing manifest, no
// manifest whose blobs are missing, no blob whose bytes do not hash to its
// digest, no referrer naming a missing manifest. Then the client's retry
// must succeed.
func TestCrashPoints(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newPushFixture(t)
			ctx := context.Background()
			// A dry run names the steps.
			c := &crasher{}
			s := open(t)
			if err := f.push(ctx, t, newRegistryOn(t, stores{crashBlobs{s.blobs, c}, crashMeta{s.meta, c}})); err != nil {
				t.Fatalf("push without faults: %v", err)
			}
			steps := c.steps
			t.Logf("%d write steps: %v", len(steps), steps)
			if len(steps) < 8 {
				t.Fatalf("suspiciously few write steps: %v", steps)
			}
			for i := 1; i <= len(steps); i++ {
				t.Run(fmt.Sprintf("before %02d %s", i, steps[i-1]), func(t *testing.T) {
					t.Parallel()
					s := open(t)
					c := &crasher{crashAt: i}
					err := f.push(ctx, t, newRegistryOn(t, stores{crashBlobs{s.blobs, c}, crashMeta{s.meta, c}}))
					if !errors.Is(err, errCrash) {
						t.Fatalf("push with a crash before step %d: got %v, want the injected crash", i, err)
					}
					// What a client sees after the crash, through a fresh
					// registry (a restarted process) on the same stores.
					reg := newRegistryOn(t, s)
					checkVisible(ctx, t, reg, f)
					if err := f.push(ctx, t, reg); err != nil {
						t.Fatalf("retry after the crash: %v", err)
					}
					checkVisible(ctx, t, reg, f)
				})
			}
		})
	}
}

func checkVisible(ctx context.Context, t *testing.T, reg *registry.Registry, f pushFixture) {
	t.Helper()
	const repo = "crash/repo"
	for _, b := range [][]byte{f.config, f.layer} {
		d := digest.FromBytes(b)
		if _, err := reg.StatBlob(ctx, repo, d); err != nil {
			continue // not linked: invisible, fine
		}
		if got := readBlob(t, reg, repo, d); !bytes.Equal(got, b) {
			t.Errorf("blob %s is visible but its bytes are not the pushed ones", d)
		}
	}
	md := digest.FromBytes(f.manifest(t))
	m, err := reg.ResolveManifest(ctx, repo, oci.Reference{Digest: md})
	manifestVisible := err == nil
	if manifestVisible {
		for _, b := range [][]byte{f.config, f.layer} {
			if _, err := reg.StatBlob(ctx, repo, digest.FromBytes(b)); err != nil {
				t.Errorf("manifest %s is visible but its blob %s is not: %v", m.Digest, digest.FromBytes(b), err)
			}
		}
	}
	for _, tag := range []string{"v1", "v1.0"} {
		got, err := reg.ResolveManifest(ctx, repo, oci.Reference{Tag: tag})
		if err != nil {
			if !isCode(err, oci.CodeManifestUnknown) {
				t.Errorf("tag %s: %v", tag, err)
			}
			continue
		}
		if got.Digest != md || !manifestVisible {
			t.Errorf("tag %s names %s, which is not the visible manifest", tag, got.Digest)
		}
	}
	refs, _, err := reg.Referrers(ctx, repo, f.subject, "", storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if _, err := reg.ResolveManifest(ctx, repo, oci.Reference{Digest: r.Digest}); err != nil {
			t.Errorf("referrer %s is listed but not readable: %v", r.Digest, err)
		}
	}
}
