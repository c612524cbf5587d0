//go:build linux

package httpapi_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/httpapi"
)

// tinyDisk mounts an 8 MiB tmpfs in a temp dir: a disk that fills up. It
// needs root (CI runs as root, where its absence fails the test).
func tinyDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs for the disk-full test: %v (CI runs as root)", err)
		}
		t.Skipf("mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file until the disk has no space left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// A full disk answers writes 507 with a message that says so, logs it
// once at error level, keeps what was acknowledged, and pushes work again
// once space is freed.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	dir := tinyDisk(t)
	logs := &syncBuffer{}
	srv := newServerAt(t, dir, httpapi.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))

	push := func(b []byte) response {
		return do(t, "POST", srv.URL+"/v2/full/app/blobs/uploads/?digest="+digest.FromBytes(b).String(), b, nil)
	}
	kept := bytes.Repeat([]byte("acknowledged "), 1000)
	if r := push(kept); r.status != http.StatusCreated {
		t.Fatalf("push before the disk filled: %d %s", r.status, r.body)
	}
	filler := filepath.Join(dir, "filler")
	fill(t, filler)

	big := bytes.Repeat([]byte("does not fit "), 100_000)
	for i := range 3 {
		r := push(append(big, byte(i)))
		if r.status != http.StatusInsufficientStorage || !strings.Contains(string(r.body), "storage is full") {
			t.Errorf("push %d on a full disk: %d %s, want 507 saying the storage is full", i, r.status, r.body)
		}
	}
	post := do(t, "POST", srv.URL+"/v2/full/app/blobs/uploads/", nil, nil)
	if r := do(t, "PATCH", srv.URL+post.header.Get("Location"), big, map[string]string{"Content-Type": "application/octet-stream"}); r.status != http.StatusInsufficientStorage {
		t.Errorf("PATCH on a full disk: %d %s, want 507", r.status, r.body)
	}
	if n := strings.Count(logs.String(), "storage is full"); n != 1 {
		t.Errorf("%d log lines say the storage is full, want 1:\n%s", n, logs.String())
	}
	var errorLines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			errorLines = append(errorLines, l)
		}
	}
	if len(errorLines) != 1 {
		t.Errorf("%d error lines, want the one that says the storage is full:\n%s", len(errorLines), strings.Join(errorLines, "\n"))
	}
	if r := do(t, "GET", srv.URL+"/v2/full/app/blobs/"+digest.FromBytes(kept).String(), nil, nil); r.status != http.StatusOK || !bytes.Equal(r.body, kept) {
		t.Errorf("the acknowledged blob on a full disk: %d", r.status)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if r := push(big); r.status != http.StatusCreated {
		t.Errorf("push once space is freed: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", srv.URL+"/v2/full/app/blobs/"+digest.FromBytes(big).String(), nil, nil); r.status != http.StatusOK || !bytes.Equal(r.body, big) {
		t.Errorf("the blob pushed after freeing space: %d", r.status)
	}
}
