package local

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/internal/storage"
)

func TestCheckKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"blob key", "blobs/sha256/ab/abcdef0123", true},
		{"dots inside", ".a/..b/c..", true},
		{"all bytes", "az09._-/x", true},
		{"longest", strings.Repeat("a/", 511) + "ab", true},
		{"empty", "", false},
		{"leading slash", "/a", false},
		{"trailing slash", "a/", false},
		{"double slash", "a//b", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"dot component", "a/./b", false},
		{"parent escape", "a/../../etc/passwd", false},
		{"upper case", "A", false},
		{"space", "a b", false},
		{"backslash", `a\b`, false},
		{"nul", "a\x00b", false},
		{"at sign", "a@", false},
		{"tilde", "~a", false},
		{"non-ASCII", "ü", false},
		{"too long", strings.Repeat("a/", 512) + "a", false},
		{"component too long", strings.Repeat("a", maxComponentLen+1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkKey(tc.key)
			if got := err == nil; got != tc.ok {
				t.Fatalf("checkKey(%q) = %v, want ok %v", tc.key, err, tc.ok)
			}
			if err != nil && !errors.Is(err, errInvalidKey) {
				t.Fatalf("checkKey(%q) = %v, want it to wrap errInvalidKey", tc.key, err)
			}
		})
	}
}

// TestBadKeysTouchNothing calls every method with keys that would escape
// the directory and checks each is refused before any file is made.
func TestBadKeysTouchNothing(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	bs, err := NewBlobStore(filepath.Join(parent, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	good := "blobs/x"
	id, err := bs.CreateMultipart(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../escape", "a/../../escape", "/abs", "x/./y", "Upper", ""} {
		calls := map[string]error{}
		calls["Put"] = bs.Put(ctx, key, 1, "", bytes.NewReader([]byte("x")))
		_, calls["Open"] = bs.Open(ctx, key, 0, -1)
		_, calls["Stat"] = bs.Stat(ctx, key)
		calls["Delete"] = bs.Delete(ctx, key)
		_, calls["CreateMultipart"] = bs.CreateMultipart(ctx, key)
		_, calls["UploadPart"] = bs.UploadPart(ctx, key, id, 1, 1, bytes.NewReader([]byte("x")))
		calls["CompleteMultipart"] = bs.CompleteMultipart(ctx, key, id, nil)
		calls["AbortMultipart"] = bs.AbortMultipart(ctx, key, id)
		for name, err := range calls {
			if !errors.Is(err, errInvalidKey) {
				t.Errorf("%s(%q): got %v, want an error wrapping errInvalidKey", name, key, err)
			}
		}
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff(names, []string{"store"}); diff != "" {
		t.Errorf("files next to the store (-got +want):\n%s", diff)
	}
	if got := tree(t, bs.root, objectsDir); len(got) != 0 {
		t.Errorf("objects after bad keys: %v", got)
	}
	// Upload ids are checked too: a crafted one is simply unknown.
	_, err = bs.UploadPart(ctx, good, "../../objects", 1, 1, bytes.NewReader([]byte("x")))
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UploadPart with a path as upload id: got %v, want ErrNotFound", err)
	}
	if err := bs.AbortMultipart(ctx, good, "../"+id); err != nil {
		t.Errorf("AbortMultipart with a path as upload id: %v", err)
	}
}
