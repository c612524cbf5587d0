package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// RunBlobStore runs the BlobStore contract against the stores newStore
// returns: one fresh, empty store per subtest.
func RunBlobStore(t *testing.T, newStore func(t *testing.T) storage.BlobStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, bs storage.BlobStore)
	}{
		{"PutOpenStat", testBlobRoundTrip},
		{"OpenRange", testBlobOpenRange},
		{"PutVerifiesDigest", testBlobPutDigest},
		{"PutWrongSize", testBlobPutWrongSize},
		{"PutReaderError", testBlobPutReaderError},
		{"PutReplaces", testBlobPutReplaces},
		{"Delete", testBlobDelete},
		{"Missing", testBlobMissing},
		{"KeysAreOpaque", testBlobKeysOpaque},
		{"ConcurrentPut", testBlobConcurrentPut},
		{"Cancelled", testBlobCancelled},
		{"List", testBlobList},
		{"Multipart", testMultipart},
		{"MultipartAbort", testMultipartAbort},
		{"MultipartSmallLastPart", testMultipartSingle},
		{"MultipartReplaces", testMultipartReplaces},
		{"MultipartIndependentUploads", testMultipartIndependent},
		{"MultipartCancelled", testMultipartCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func testBlobRoundTrip(t *testing.T, bs storage.BlobStore) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello, skiff")},
		{"bigger than a copy buffer", randBytes(1, 3<<20+17)},
	}
	for _, tc := range tests {
		key := "blobs/sha256/" + digest.FromBytes(tc.data).Encoded()
		put(t, bs, key, tc.data)
		wantContent(t, bs, key, tc.data)
		// Without an expected digest the bytes are stored unchecked.
		key2 := "uploads/roundtrip/" + strings.ReplaceAll(tc.name, " ", "-")
		noErr(t, bs.Put(t.Context(), key2, int64(len(tc.data)), "", bytes.NewReader(tc.data)))
		wantContent(t, bs, key2, tc.data)
	}
}

func testBlobOpenRange(t *testing.T, bs storage.BlobStore) {
	data := randBytes(2, 1000)
	put(t, bs, "r", data)
	tests := []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"whole", 0, -1, data},
		{"whole with length", 0, 1000, data},
		{"head", 0, 10, data[:10]},
		{"middle", 100, 50, data[100:150]},
		{"from offset to end", 990, -1, data[990:]},
		{"last byte", 999, 1, data[999:]},
		{"ends at the end", 900, 100, data[900:]},
		{"length past the end is cut", 900, 5000, data[900:]},
		{"zero length", 10, 0, nil},
		{"at the end", 1000, -1, nil},
		{"at the end with length", 1000, 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := read(t, bs, "r", tc.offset, tc.length)
			if diff := cmp.Diff(got, tc.want, equateEmpty); diff != "" {
				t.Errorf("Open(%d, %d) mismatch (-got +want):\n%s", tc.offset, tc.length, diff)
			}
		})
	}
	for _, offset := range []int64{-1, 1001} {
		rc, err := bs.Open(t.Context(), "r", offset, -1)
		if err == nil {
			rc.Close()
			t.Errorf("Open(%d, -1) on a 1000-byte object: got no error", offset)
		}
	}
}

func testBlobPutDigest(t *testing.T, bs storage.BlobStore) {
	data := []byte("the right bytes")
	wrong := digest.FromString("other bytes")
	err := bs.Put(t.Context(), "d", int64(len(data)), wrong, bytes.NewReader(data))
	wantErr(t, err, storage.ErrDigestMismatch)
	wantAbsent(t, bs, "d")

	// A mismatch must not disturb what was there.
	put(t, bs, "d", data)
	err = bs.Put(t.Context(), "d", int64(len(data)), wrong, bytes.NewReader(data))
	wantErr(t, err, storage.ErrDigestMismatch)
	wantContent(t, bs, "d", data)

	// sha512 is verified too.
	d512 := digest.SHA512.FromBytes(data)
	noErr(t, bs.Put(t.Context(), "d512", int64(len(data)), d512, bytes.NewReader(data)))
	wantContent(t, bs, "d512", data)
}

func testBlobPutWrongSize(t *testing.T, bs storage.BlobStore) {
	data := randBytes(3, 100_000)
	err := bs.Put(t.Context(), "short", int64(len(data))+1, "", bytes.NewReader(data))
	wantErr(t, err, io.ErrUnexpectedEOF)
	wantAbsent(t, bs, "short")

	err = bs.Put(t.Context(), "long", int64(len(data))-1, "", bytes.NewReader(data))
	if err == nil {
		t.Error("Put with a reader longer than size: got no error")
	}
	wantAbsent(t, bs, "long")

	// Even with the right digest for the first size bytes.
	err = bs.Put(t.Context(), "long", 10, digest.FromBytes(data[:10]), bytes.NewReader(data))
	if err == nil {
		t.Error("Put with a reader longer than size and a matching digest: got no error")
	}
	wantAbsent(t, bs, "long")

	// A failed Put leaves an existing object alone.
	put(t, bs, "short", []byte("old"))
	err = bs.Put(t.Context(), "short", int64(len(data))+1, "", bytes.NewReader(data))
	wantErr(t, err, io.ErrUnexpectedEOF)
	wantContent(t, bs, "short", []byte("old"))
}

var errReader = errors.New("storagetest: reader failed")

func testBlobPutReaderError(t *testing.T, bs storage.BlobStore) {
	data := randBytes(4, 1<<20)
	r := &failingReader{data: data[:len(data)/2], err: errReader}
	err := bs.Put(t.Context(), "e", int64(len(data)), "", r)
	wantErr(t, err, errReader)
	wantAbsent(t, bs, "e")

	put(t, bs, "e", []byte("old"))
	r = &failingReader{data: data[:len(data)/2], err: errReader}
	err = bs.Put(t.Context(), "e", int64(len(data)), "", r)
	wantErr(t, err, errReader)
	wantContent(t, bs, "e", []byte("old"))
}

func testBlobPutReplaces(t *testing.T, bs storage.BlobStore) {
	put(t, bs, "k", []byte("first version, longer"))
	put(t, bs, "k", []byte("second"))
	wantContent(t, bs, "k", []byte("second"))
	// Content-addressed keys: putting the same bytes again is a no-op.
	put(t, bs, "k", []byte("second"))
	wantContent(t, bs, "k", []byte("second"))
}

func testBlobDelete(t *testing.T, bs storage.BlobStore) {
	put(t, bs, "del/me", []byte("bye"))
	put(t, bs, "del/keep", []byte("stay"))
	noErr(t, bs.Delete(t.Context(), "del/me"))
	wantAbsent(t, bs, "del/me")
	wantContent(t, bs, "del/keep", []byte("stay"))
	noErr(t, bs.Delete(t.Context(), "del/me"))
	noErr(t, bs.Delete(t.Context(), "never/was"))
	// The key can be used again.
	put(t, bs, "del/me", []byte("back"))
	wantContent(t, bs, "del/me", []byte("back"))
}

func testBlobMissing(t *testing.T, bs storage.BlobStore) {
	wantAbsent(t, bs, "missing")
	wantAbsent(t, bs, "missing/deeper/key")
	put(t, bs, "a/b", []byte("x"))
	// Neither a "directory" nor a prefix of an existing key is an object.
	wantAbsent(t, bs, "a")
	wantAbsent(t, bs, "a/b/c")
}

func testBlobKeysOpaque(t *testing.T, bs storage.BlobStore) {
	keys := []string{"x", "x/y", "x/y/z", "x.y", "x-", "x_y/z", "x/y.z", ".x/..y/z.."}
	for i, k := range keys {
		put(t, bs, k, []byte(fmt.Sprintf("content of %d", i)))
	}
	for i, k := range keys {
		wantContent(t, bs, k, []byte(fmt.Sprintf("content of %d", i)))
	}
	noErr(t, bs.Delete(t.Context(), "x/y"))
	wantAbsent(t, bs, "x/y")
	wantContent(t, bs, "x/y/z", []byte("content of 2"))
	wantContent(t, bs, "x", []byte("content of 0"))
}

func testBlobConcurrentPut(t *testing.T, bs storage.BlobStore) {
	const writers = 8
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = randBytes(uint64(100+i), 256<<10)
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = bs.Put(t.Context(), "same/key", int64(len(contents[i])), digest.FromBytes(contents[i]), bytes.NewReader(contents[i]))
		})
	}
	// Readers running alongside see either nothing or one whole version.
	for range 4 {
		wg.Go(func() {
			rc, err := bs.Open(t.Context(), "same/key", 0, -1)
			if errors.Is(err, storage.ErrNotFound) {
				return
			}
			if err != nil {
				t.Errorf("concurrent Open: %v", err)
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Errorf("concurrent read: %v", err)
				return
			}
			if !oneOf(got, contents) {
				t.Errorf("concurrent read got %s, not one of the written versions", describe(got))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if got := read(t, bs, "same/key", 0, -1); !oneOf(got, contents) {
		t.Errorf("after concurrent Puts got %s, not one of the written versions", describe(got))
	}
}

func oneOf(b []byte, candidates [][]byte) bool {
	for _, c := range candidates {
		if bytes.Equal(b, c) {
			return true
		}
	}
	return false
}

func testBlobCancelled(t *testing.T, bs storage.BlobStore) {
	data := randBytes(5, 2<<20)
	ctx := cancelled(t)

	err := bs.Put(ctx, "c", int64(len(data)), "", bytes.NewReader(data))
	wantErr(t, err, context.Canceled)
	wantAbsent(t, bs, "c")

	// Cancelled while the bytes are being copied.
	ctx2, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &cancellingReader{data: data, after: 512 << 10, cancel: cancel}
	err = bs.Put(ctx2, "c", int64(len(data)), "", r)
	wantErr(t, err, context.Canceled)
	wantAbsent(t, bs, "c")

	put(t, bs, "c", data)
	_, err = bs.Stat(ctx, "c")
	wantErr(t, err, context.Canceled)
	// Open may fail at once or on the first read.
	rc, err := bs.Open(ctx, "c", 0, -1)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	wantErr(t, err, context.Canceled)
	wantErr(t, bs.Delete(ctx, "c"), context.Canceled)
	wantContent(t, bs, "c", data)
}

// testBlobList lists objects under a prefix in key order, in pages, with
// their sizes, and nothing outside the prefix.
func testBlobList(t *testing.T, bs storage.BlobStore) {
	ctx := t.Context()
	want := map[string]int64{}
	for i := range 12 {
		k := fmt.Sprintf("gc/list/%02d/obj", i)
		put(t, bs, k, randBytes(uint64(i), i*10))
		want[k] = int64(i * 10)
	}
	put(t, bs, "gc/listx", []byte("outside"))
	put(t, bs, "gc/other/x", []byte("outside"))
	start := time.Now().Add(-time.Hour)
	for _, limit := range []int{0, 5} {
		got := map[string]int64{}
		last := ""
		p := storage.Page{Limit: limit}
		for {
			objs, err := bs.List(ctx, "gc/list/", p)
			noErr(t, err)
			for _, o := range objs {
				if o.Key <= last {
					t.Fatalf("limit %d: %s listed after %s", limit, o.Key, last)
				}
				last = o.Key
				got[o.Key] = o.Size
				if o.Modified.Before(start) {
					t.Fatalf("%s: modified %v", o.Key, o.Modified)
				}
			}
			if limit == 0 || len(objs) < limit {
				break
			}
			p.After = objs[len(objs)-1].Key
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("limit %d: (-want +got):\n%s", limit, diff)
		}
	}
}
