package backend

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// TestLocalJanitor: an upload abandoned halfway (a multipart upload with a
// part, a tail segment, a session item) survives the janitor while its
// session may still be resumed, and is gone, every byte of it, once the
// margins after its expiry have passed.
func TestLocalJanitor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	st, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	clock := func() time.Time { return now }
	reg, err := registry.New(st.Blobs, st.Meta, registry.WithPartSize(64<<10, 32<<10), registry.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	u, err := reg.StartUpload(ctx, "team/app")
	if err != nil {
		t.Fatal(err)
	}
	// One part and a tail under the minimum part size: a multipart upload
	// and a segment.
	if _, err := reg.WriteUpload(ctx, "team/app", u.ID, 0, bytes.NewReader(make([]byte, 74<<10))); err != nil {
		t.Fatal(err)
	}
	files := func() int {
		t.Helper()
		n := 0
		for _, sub := range []string{"multipart", "objects/uploads"} {
			err := filepath.WalkDir(filepath.Join(cfg.DataDir, "blobs", sub), func(_ string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() {
					n++
				}
				return nil
			})
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
		return n
	}
	if n := files(); n < 3 { // key file, part 1, a segment
		t.Fatalf("the abandoned upload left %d files, want a multipart upload and a segment", n)
	}

	tests := []struct {
		name  string
		after time.Duration
		want  Expired
	}{
		{"while the session lives", registry.DefaultUploadTTL - time.Minute, Expired{}},
		{"the session expired: its item", registry.DefaultUploadTTL + time.Minute, Expired{Sessions: 1}},
		{"an hour later: the multipart upload", registry.DefaultUploadTTL + time.Hour + time.Minute, Expired{Multiparts: 1}},
		{"twice the TTL: the segments", 2*registry.DefaultUploadTTL + time.Minute, Expired{Segments: 1}},
		{"nothing is left", 3 * registry.DefaultUploadTTL, Expired{}},
	}
	for _, tc := range tests {
		got, err := st.Janitor(ctx, now.Add(tc.after))
		if err != nil || got != tc.want {
			t.Errorf("%s: Janitor = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	if n := files(); n != 0 {
		t.Errorf("%d files left after the janitor", n)
	}
	now = now.Add(3 * registry.DefaultUploadTTL)
	var e *oci.Error
	if _, err := reg.UploadStatus(ctx, "team/app", u.ID); !errors.As(err, &e) || e.Code != oci.CodeBlobUploadUnknown {
		t.Errorf("the expired session: %v, want BLOB_UPLOAD_UNKNOWN", err)
	}
}
