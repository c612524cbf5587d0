package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// tree lists the files (not directories) under root/sub, relative to root.
func tree(t *testing.T, root, sub string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(root, sub), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func newBlobStore(t *testing.T) *BlobStore {
	t.Helper()
	bs, err := NewBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// endless yields bytes forever, cancelling ctx after a while.
type endless struct {
	n      int
	cancel context.CancelFunc
}

func (r *endless) Read(p []byte) (int, error) {
	if r.n += len(p); r.n > 1<<20 {
		r.cancel()
	}
	return len(p), nil
}

// TestNoGarbage checks that failed writes leave no temporary file and that
// completing, replacing, deleting and aborting leave no part behind.
func TestNoGarbage(t *testing.T) {
	t.Parallel()
	bs := newBlobStore(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("x"), 300<<10)

	// Failed puts.
	_ = bs.Put(ctx, "k/a", int64(len(data)), digest.FromString("other"), bytes.NewReader(data))
	_ = bs.Put(ctx, "k/a", int64(len(data))+1, "", bytes.NewReader(data))
	_ = bs.Put(ctx, "k/a", 1, "", bytes.NewReader(data))
	cctx, cancel := context.WithCancel(ctx)
	_ = bs.Put(cctx, "k/a", 1<<40, "", &endless{cancel: cancel})
	if got := tree(t, bs.root, "."); len(got) != 0 {
		t.Errorf("files after failed puts: %v", got)
	}

	// A composite replaced by a plain object, then by another composite,
	// then deleted; plus an aborted upload and a failed part.
	complete := func(parts ...[]byte) {
		t.Helper()
		id, err := bs.CreateMultipart(ctx, "k/m")
		if err != nil {
			t.Fatal(err)
		}
		var list []storage.Part
		for i, b := range parts {
			p, err := bs.UploadPart(ctx, "k/m", id, i+1, int64(len(b)), bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, p)
		}
		// A re-uploaded part and one left out: both garbage once completed.
		if _, err := bs.UploadPart(ctx, "k/m", id, 1, int64(len(parts[0])), bytes.NewReader(parts[0])); err != nil {
			t.Fatal(err)
		}
		if _, err := bs.UploadPart(ctx, "k/m", id, 9, 1, bytes.NewReader([]byte("z"))); err != nil {
			t.Fatal(err)
		}
		if _, err := bs.UploadPart(ctx, "k/m", id, 8, 5, bytes.NewReader([]byte("z"))); err == nil {
			t.Fatal("short part: got no error")
		}
		list[0].ETag = ""
		if err := bs.CompleteMultipart(ctx, "k/m", id, list); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("complete with a stale ETag: got %v, want ErrConflict", err)
		}
		// Refresh part 1's ETag from the upload.
		p, err := bs.UploadPart(ctx, "k/m", id, 1, int64(len(parts[0])), bytes.NewReader(parts[0]))
		if err != nil {
			t.Fatal(err)
		}
		list[0] = p
		if err := bs.CompleteMultipart(ctx, "k/m", id, list); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("p"), storage.MinPartSize)
	complete(big, []byte("tail"))
	want := []string{"objects/k/m@", "parts/"}
	if got := tree(t, bs.root, "."); len(got) != 3 || got[0] != want[0] ||
		!strings.HasPrefix(got[1], want[1]) || !strings.HasPrefix(got[2], want[1]) {
		t.Errorf("files after complete: got %v, want the object and its 2 parts", got)
	}
	if err := bs.Put(ctx, "k/m", 3, "", strings.NewReader("new")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tree(t, bs.root, "."), []string{"objects/k/m@"}); diff != "" {
		t.Errorf("files after replacing a composite (-got +want):\n%s", diff)
	}
	complete(big, []byte("tail"))
	complete([]byte("single"))
	if got := tree(t, bs.root, partsDir); len(got) != 1 {
		t.Errorf("parts after replacing a composite by another: got %v, want 1", got)
	}
	if err := bs.Delete(ctx, "k/m"); err != nil {
		t.Fatal(err)
	}
	id, err := bs.CreateMultipart(ctx, "k/n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.UploadPart(ctx, "k/n", id, 1, 1, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := bs.AbortMultipart(ctx, "k/n", id); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, bs.root, "."); len(got) != 0 {
		t.Errorf("files after delete and abort: %v", got)
	}
}

// TestPutStopsOnCancel checks ctx is honoured during the copy, not only
// after it: the reader never ends.
func TestPutStopsOnCancel(t *testing.T) {
	t.Parallel()
	bs := newBlobStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- bs.Put(ctx, "k", 1<<50, "", &endless{cancel: cancel}) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Put did not stop after its ctx was cancelled")
	}
}

// TestReaderStopsOnCancel checks a reader returned by Open fails once its
// ctx is cancelled.
func TestReaderStopsOnCancel(t *testing.T) {
	t.Parallel()
	bs := newBlobStore(t)
	data := bytes.Repeat([]byte("r"), 1<<20)
	if err := bs.Put(t.Context(), "k", int64(len(data)), "", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	rc, err := bs.Open(ctx, "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: got %v, want context.Canceled", err)
	}
}

// TestCompositeReaderOutlivesDelete checks an open reader of a multipart
// object keeps reading it after the object is deleted, as with a file.
func TestCompositeReaderOutlivesDelete(t *testing.T) {
	t.Parallel()
	bs := newBlobStore(t)
	ctx := t.Context()
	p1, p2 := bytes.Repeat([]byte("1"), storage.MinPartSize), []byte("two")
	id, err := bs.CreateMultipart(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	var parts []storage.Part
	for i, b := range [][]byte{p1, p2} {
		p, err := bs.UploadPart(ctx, "k", id, i+1, int64(len(b)), bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if err := bs.CompleteMultipart(ctx, "k", id, parts); err != nil {
		t.Fatal(err)
	}
	rc, err := bs.Open(ctx, "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := bs.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(p1, p2...)) {
		t.Errorf("read %d bytes after delete, want the whole %d-byte object", len(got), len(p1)+len(p2))
	}
}

// TestCompleteRejectsSmallParts checks the S3 rule that every part but the
// last reaches MinPartSize, so code tested locally also works on S3.
func TestCompleteRejectsSmallParts(t *testing.T) {
	t.Parallel()
	bs := newBlobStore(t)
	ctx := t.Context()
	id, err := bs.CreateMultipart(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	var parts []storage.Part
	for i, s := range []string{"small", "last"} {
		p, err := bs.UploadPart(ctx, "k", id, i+1, int64(len(s)), strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if err := bs.CompleteMultipart(ctx, "k", id, parts); err == nil {
		t.Fatal("completed with a first part below MinPartSize")
	}
	// The upload survives the failed completion.
	if err := bs.CompleteMultipart(ctx, "k", id, parts[1:]); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Stat(ctx, "k"); err != nil {
		t.Fatal(err)
	}
}

// TestReopen checks that both stores keep their data across a restart.
func TestReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	bs := newBlobStoreAt(t, filepath.Join(dir, "blobs"))
	if err := bs.Put(ctx, "k", 5, "", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	id, err := bs.CreateMultipart(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	part, err := bs.UploadPart(ctx, "m", id, 1, 3, strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := OpenMetaStore(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	tag := storage.Tag{Name: "latest", Digest: digest.FromString("m")}
	if err := ms.PutTag(ctx, "r", tag); err != nil {
		t.Fatal(err)
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}

	bs = newBlobStoreAt(t, filepath.Join(dir, "blobs"))
	if err := bs.CompleteMultipart(ctx, "m", id, []storage.Part{part}); err != nil {
		t.Fatalf("complete an upload begun before the restart: %v", err)
	}
	for key, want := range map[string]string{"k": "hello", "m": "abc"} {
		rc, err := bs.Open(ctx, key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != want {
			t.Errorf("%s after restart: got %q, %v; want %q", key, got, err, want)
		}
	}
	ms, err = OpenMetaStore(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	got, err := ms.GetTag(ctx, "r", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, tag); diff != "" {
		t.Errorf("tag after reopen (-got +want):\n%s", diff)
	}
}

func newBlobStoreAt(t *testing.T, dir string) *BlobStore {
	t.Helper()
	bs, err := NewBlobStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// TestMetaRejectsSeparator checks names holding the key separator are
// refused: they could reach into another repository's items.
func TestMetaRejectsSeparator(t *testing.T) {
	t.Parallel()
	ms, err := OpenMetaStore(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	ctx := t.Context()
	d := digest.FromString("x")
	if err := ms.PutTag(ctx, "a", storage.Tag{Name: "x" + sep + "y", Digest: d}); err == nil {
		t.Error("PutTag with a separator in the tag: got no error")
	}
	if _, err := ms.ListTags(ctx, "a"+sep, storage.Page{}); err == nil {
		t.Error("ListTags with a separator in the repository: got no error")
	}
	if err := ms.PutBlob(ctx, "", storage.Blob{Digest: d}); err == nil {
		t.Error("PutBlob in an empty repository name: got no error")
	}
	if err := ms.PutBlob(ctx, "a", storage.Blob{Digest: "sha256:" + sep}); err == nil {
		t.Error("PutBlob with an invalid digest: got no error")
	}
}
