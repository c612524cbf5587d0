package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// age sets a file's (or directory's) times to t.
func age(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestAbortMultipartsBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := newBlobStore(t)
	now := time.Now()
	oldID, err := bs.CreateMultipart(ctx, "blobs/uploaded/old")
	if err != nil {
		t.Fatal(err)
	}
	newID, err := bs.CreateMultipart(ctx, "blobs/uploaded/new")
	if err != nil {
		t.Fatal(err)
	}
	// Initiated two days ago; a part written a minute ago does not make
	// it younger (S3 counts from initiation).
	if _, err := bs.UploadPart(ctx, "blobs/uploaded/old", oldID, 1, 3, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	age(t, filepath.Join(bs.uploadDir(oldID), keyFile), now.Add(-48*time.Hour))

	n, err := bs.AbortMultipartsBefore(ctx, now.Add(-25*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("AbortMultipartsBefore = %d, %v; want 1", n, err)
	}
	if _, err := bs.UploadPart(ctx, "blobs/uploaded/old", oldID, 2, 3, strings.NewReader("def")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the old upload still takes parts: %v", err)
	}
	if _, err := bs.UploadPart(ctx, "blobs/uploaded/new", newID, 1, 3, strings.NewReader("abc")); err != nil {
		t.Errorf("the new upload was aborted: %v", err)
	}
	if got := tree(t, bs.root, trashDir); len(got) != 0 {
		t.Errorf("left in the trash: %v", got)
	}
	if n, err := bs.AbortMultipartsBefore(ctx, now.Add(-25*time.Hour)); err != nil || n != 0 {
		t.Errorf("second run = %d, %v; want 0", n, err)
	}
}

func TestDeleteObjectsBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := newBlobStore(t)
	now := time.Now()
	put := func(key string, at time.Time) {
		t.Helper()
		if err := bs.Put(ctx, key, 1, "", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		age(t, bs.objectPath(key), at)
	}
	old, recent := now.Add(-72*time.Hour), now.Add(-time.Hour)
	blob := "blobs/sha256/" + digest.FromString("x").Encoded()
	put("uploads/a/0-c1", old)
	put("uploads/a/5-c2", recent)
	put("uploads/b/0-c3", old)
	put("uploadsx/0", old) // shares the prefix's letters, not its directory
	put(blob, old)

	if _, err := bs.DeleteObjectsBefore(ctx, "uploads", now); err == nil {
		t.Error("a prefix without a trailing slash was accepted")
	}
	if _, err := bs.DeleteObjectsBefore(ctx, "../", now); err == nil {
		t.Error("a prefix outside the keys was accepted")
	}
	n, err := bs.DeleteObjectsBefore(ctx, "uploads/", now.Add(-48*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("DeleteObjectsBefore = %d, %v; want 2", n, err)
	}
	var left []string
	for _, k := range []string{"uploads/a/0-c1", "uploads/a/5-c2", "uploads/b/0-c3", "uploadsx/0", blob} {
		if _, err := bs.Stat(ctx, k); err == nil {
			left = append(left, k)
		}
	}
	if want := []string{"uploads/a/5-c2", "uploadsx/0", blob}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	if n, err := bs.DeleteObjectsBefore(ctx, "nothing/here/", now); err != nil || n != 0 {
		t.Errorf("a prefix with no objects: %d, %v", n, err)
	}
}

func TestDeleteUploadsExpiredBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ms, err := OpenMetaStore(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	now := time.Now()
	for _, u := range []storage.Upload{
		{ID: "expired", Repo: "r", Expires: now.Add(-time.Minute)},
		{ID: "done-expired", Repo: "r", Done: true, Expires: now.Add(-time.Hour)},
		{ID: "live", Repo: "r", Expires: now.Add(time.Hour)},
		{ID: "no-expiry", Repo: "r"},
	} {
		if err := ms.CreateUpload(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	n, err := ms.DeleteUploadsExpiredBefore(ctx, now)
	if err != nil || n != 2 {
		t.Fatalf("DeleteUploadsExpiredBefore = %d, %v; want 2", n, err)
	}
	for id, want := range map[string]bool{"expired": false, "done-expired": false, "live": true, "no-expiry": true} {
		_, err := ms.GetUpload(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("upload %s kept = %v, want %v (%v)", id, got, want, err)
		}
	}
}
