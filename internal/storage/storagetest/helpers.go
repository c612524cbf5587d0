package storagetest

import (
	"bytes"
	"context"
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// equateEmpty lets a store return nil where the suite stored an empty
// slice or map, and the other way round.
var equateEmpty = cmpopts.EquateEmpty()

// testTime is a fixed instant, truncated to the millisecond precision the
// suite asks adapters to keep.
var testTime = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// randBytes returns n deterministic pseudo-random bytes for seed.
func randBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	r := rand.NewChaCha8(key)
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// testDigest returns a valid sha256 digest derived from s.
func testDigest(s string) digest.Digest {
	return digest.FromString(s)
}

// wantErr fails unless err wraps target.
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one wrapping %v", err, target)
	}
}

// noErr fails on err.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// put stores b at key, verifying its digest.
func put(t *testing.T, bs storage.BlobStore, key string, b []byte) {
	t.Helper()
	noErr(t, bs.Put(t.Context(), key, int64(len(b)), digest.FromBytes(b), bytes.NewReader(b)))
}

// read returns length bytes of key from offset.
func read(t *testing.T, bs storage.BlobStore, key string, offset, length int64) []byte {
	t.Helper()
	rc, err := bs.Open(t.Context(), key, offset, length)
	if err != nil {
		t.Fatalf("open %s [%d,%d): %v", key, offset, length, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s [%d,%d): %v", key, offset, length, err)
	}
	return b
}

// wantAbsent fails unless key is absent from bs (Stat and Open report
// ErrNotFound).
func wantAbsent(t *testing.T, bs storage.BlobStore, key string) {
	t.Helper()
	_, err := bs.Stat(t.Context(), key)
	wantErr(t, err, storage.ErrNotFound)
	rc, err := bs.Open(t.Context(), key, 0, -1)
	if err == nil {
		rc.Close()
	}
	wantErr(t, err, storage.ErrNotFound)
}

// wantContent fails unless key holds exactly want.
func wantContent(t *testing.T, bs storage.BlobStore, key string, want []byte) {
	t.Helper()
	size, err := bs.Stat(t.Context(), key)
	noErr(t, err)
	if size != int64(len(want)) {
		t.Fatalf("stat %s: got size %d, want %d", key, size, len(want))
	}
	if got := read(t, bs, key, 0, -1); !bytes.Equal(got, want) {
		t.Fatalf("content of %s: got %s, want %s", key, describe(got), describe(want))
	}
}

// describe summarises b for failure messages without dumping megabytes.
func describe(b []byte) string {
	if len(b) <= 32 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes %s", len(b), digest.FromBytes(b))
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// failingReader yields data, then fails with err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// cancellingReader yields data and calls cancel once after yielding after
// bytes; it keeps yielding afterwards, so only the store can stop the copy.
type cancellingReader struct {
	data   []byte
	after  int
	read   int
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.read >= r.after {
		r.cancel()
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	r.read += n
	return n, nil
}
