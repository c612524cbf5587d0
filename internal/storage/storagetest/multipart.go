package storagetest

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/internal/storage"
)

// partSize is the smallest part S3 accepts, so the suite stays fast.
const partSize = storage.MinPartSize

// uploadPart uploads b as part n and checks the returned Part.
func uploadPart(t *testing.T, bs storage.BlobStore, key, id string, n int, b []byte) storage.Part {
	t.Helper()
	p, err := bs.UploadPart(t.Context(), key, id, n, int64(len(b)), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("upload part %d: %v", n, err)
	}
	if p.Number != n || p.Size != int64(len(b)) || p.ETag == "" {
		t.Fatalf("upload part %d: got %+v, want number %d, size %d and an ETag", n, p, n, len(b))
	}
	return p
}

func createMultipart(t *testing.T, bs storage.BlobStore, key string) string {
	t.Helper()
	id, err := bs.CreateMultipart(t.Context(), key)
	noErr(t, err)
	if id == "" {
		t.Fatal("CreateMultipart returned an empty id")
	}
	return id
}

func testMultipart(t *testing.T, bs storage.BlobStore) {
	const key = "blobs/multi"
	p1 := randBytes(10, partSize)
	p2 := randBytes(11, partSize)
	p2b := randBytes(12, partSize)
	p3 := randBytes(13, 1234)

	id := createMultipart(t, bs, key)
	// Parts may arrive in any order.
	part3 := uploadPart(t, bs, key, id, 3, p3)
	part1 := uploadPart(t, bs, key, id, 1, p1)
	part2old := uploadPart(t, bs, key, id, 2, p2)
	wantAbsent(t, bs, key)

	// Re-uploading a part number replaces the part.
	part2 := uploadPart(t, bs, key, id, 2, p2b)
	if part2.ETag == part2old.ETag {
		t.Fatalf("re-uploaded part 2 with other bytes kept ETag %q", part2.ETag)
	}
	wantAbsent(t, bs, key)

	// Completing with the replaced part's ETag fails and keeps the upload.
	err := bs.CompleteMultipart(t.Context(), key, id, []storage.Part{part1, part2old, part3})
	wantErr(t, err, storage.ErrConflict)
	wantAbsent(t, bs, key)
	bogus := part3
	bogus.ETag = "not-an-etag"
	err = bs.CompleteMultipart(t.Context(), key, id, []storage.Part{part1, part2, bogus})
	wantErr(t, err, storage.ErrConflict)
	wantAbsent(t, bs, key)

	noErr(t, bs.CompleteMultipart(t.Context(), key, id, []storage.Part{part1, part2, part3}))
	whole := bytes.Join([][]byte{p1, p2b, p3}, nil)
	wantContent(t, bs, key, whole)

	// Ranges across part boundaries.
	size := int64(len(whole))
	tests := []struct {
		name           string
		offset, length int64
	}{
		{"first part", 0, partSize},
		{"second part exactly", partSize, partSize},
		{"across the first boundary", partSize - 10, 20},
		{"across both boundaries", partSize - 1, partSize + 2},
		{"into the last part to the end", 2*partSize - 5, -1},
		{"last part", 2 * partSize, -1},
		{"last byte", size - 1, 1},
		{"at the end", size, -1},
		{"past the end is cut", size - 3, 100},
		{"zero length on a boundary", partSize, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			end := size
			if tc.length >= 0 {
				end = min(tc.offset+tc.length, size)
			}
			got := read(t, bs, key, tc.offset, tc.length)
			if want := whole[tc.offset:end]; !bytes.Equal(got, want) {
				t.Errorf("Open(%d, %d): got %s, want %s", tc.offset, tc.length, describe(got), describe(want))
			}
		})
	}

	// The upload is gone once completed; aborting it is a no-op and must not
	// damage the object.
	noErr(t, bs.AbortMultipart(t.Context(), key, id))
	wantContent(t, bs, key, whole)
	_, err = bs.UploadPart(t.Context(), key, id, 4, 1, bytes.NewReader([]byte("x")))
	wantErr(t, err, storage.ErrNotFound)

	noErr(t, bs.Delete(t.Context(), key))
	wantAbsent(t, bs, key)
}

func testMultipartAbort(t *testing.T, bs storage.BlobStore) {
	const key = "blobs/aborted"
	id := createMultipart(t, bs, key)
	part := uploadPart(t, bs, key, id, 1, randBytes(20, 1000))
	noErr(t, bs.AbortMultipart(t.Context(), key, id))
	wantAbsent(t, bs, key)

	_, err := bs.UploadPart(t.Context(), key, id, 2, 3, bytes.NewReader([]byte("abc")))
	wantErr(t, err, storage.ErrNotFound)
	err = bs.CompleteMultipart(t.Context(), key, id, []storage.Part{part})
	wantErr(t, err, storage.ErrNotFound)
	wantAbsent(t, bs, key)

	// Aborting again, or an upload that never existed, is not an error.
	noErr(t, bs.AbortMultipart(t.Context(), key, id))
	other := createMultipart(t, bs, "blobs/other")
	noErr(t, bs.AbortMultipart(t.Context(), "blobs/other", other))
	noErr(t, bs.AbortMultipart(t.Context(), "blobs/other", other))
}

func testMultipartSingle(t *testing.T, bs storage.BlobStore) {
	// The last (here only) part may be smaller than MinPartSize.
	const key = "blobs/single"
	data := randBytes(30, 4321)
	id := createMultipart(t, bs, key)
	part := uploadPart(t, bs, key, id, 1, data)
	noErr(t, bs.CompleteMultipart(t.Context(), key, id, []storage.Part{part}))
	wantContent(t, bs, key, data)
	got := read(t, bs, key, 4000, 1000)
	if diff := cmp.Diff(got, data[4000:]); diff != "" {
		t.Errorf("range read mismatch (-got +want):\n%s", diff)
	}
}

func testMultipartReplaces(t *testing.T, bs storage.BlobStore) {
	const key = "blobs/replaced"
	put(t, bs, key, []byte("plain before"))

	// A completed multipart object replaces a plain one...
	p1 := randBytes(40, partSize)
	p2 := randBytes(41, 10)
	id := createMultipart(t, bs, key)
	parts := []storage.Part{uploadPart(t, bs, key, id, 1, p1), uploadPart(t, bs, key, id, 2, p2)}
	wantContent(t, bs, key, []byte("plain before"))
	noErr(t, bs.CompleteMultipart(t.Context(), key, id, parts))
	wantContent(t, bs, key, append(append([]byte{}, p1...), p2...))

	// ...a plain Put replaces a multipart object...
	put(t, bs, key, []byte("plain after"))
	wantContent(t, bs, key, []byte("plain after"))

	// ...and a multipart object replaces another one.
	id = createMultipart(t, bs, key)
	parts = []storage.Part{uploadPart(t, bs, key, id, 1, p2)}
	noErr(t, bs.CompleteMultipart(t.Context(), key, id, parts))
	id = createMultipart(t, bs, key)
	parts = []storage.Part{uploadPart(t, bs, key, id, 1, p1)}
	noErr(t, bs.CompleteMultipart(t.Context(), key, id, parts))
	wantContent(t, bs, key, p1)

	noErr(t, bs.Delete(t.Context(), key))
	wantAbsent(t, bs, key)
}

func testMultipartIndependent(t *testing.T, bs storage.BlobStore) {
	const key = "blobs/twice"
	a := createMultipart(t, bs, key)
	b := createMultipart(t, bs, key)
	if a == b {
		t.Fatalf("two CreateMultipart calls returned the same id %q", a)
	}
	pa := uploadPart(t, bs, key, a, 1, []byte("from a"))
	pb := uploadPart(t, bs, key, b, 1, []byte("from b"))
	noErr(t, bs.AbortMultipart(t.Context(), key, b))
	noErr(t, bs.CompleteMultipart(t.Context(), key, a, []storage.Part{pa}))
	wantContent(t, bs, key, []byte("from a"))
	err := bs.CompleteMultipart(t.Context(), key, b, []storage.Part{pb})
	wantErr(t, err, storage.ErrNotFound)
	wantContent(t, bs, key, []byte("from a"))

	// An upload belongs to its key: under another key it does not exist
	// (S3 NoSuchUpload), and aborting it there leaves it alone.
	c := createMultipart(t, bs, key)
	_, err = bs.UploadPart(t.Context(), "blobs/elsewhere", c, 1, 1, bytes.NewReader([]byte("x")))
	wantErr(t, err, storage.ErrNotFound)
	pc := uploadPart(t, bs, key, c, 1, []byte("from c"))
	err = bs.CompleteMultipart(t.Context(), "blobs/elsewhere", c, []storage.Part{pc})
	wantErr(t, err, storage.ErrNotFound)
	noErr(t, bs.AbortMultipart(t.Context(), "blobs/elsewhere", c))
	noErr(t, bs.CompleteMultipart(t.Context(), key, c, []storage.Part{pc}))
	wantContent(t, bs, key, []byte("from c"))
	wantAbsent(t, bs, "blobs/elsewhere")
}

func testMultipartCancelled(t *testing.T, bs storage.BlobStore) {
	const key = "blobs/cancelled"
	id := createMultipart(t, bs, key)
	data := randBytes(50, 2<<20)
	ctx := cancelled(t)
	_, err := bs.UploadPart(ctx, key, id, 1, int64(len(data)), bytes.NewReader(data))
	wantErr(t, err, context.Canceled)
	_, err = bs.CreateMultipart(ctx, key)
	wantErr(t, err, context.Canceled)

	part := uploadPart(t, bs, key, id, 1, data)
	err = bs.CompleteMultipart(ctx, key, id, []storage.Part{part})
	wantErr(t, err, context.Canceled)
	wantAbsent(t, bs, key)

	// A short part fails like a short Put.
	_, err = bs.UploadPart(t.Context(), key, id, 2, 10, bytes.NewReader([]byte("short")))
	wantErr(t, err, io.ErrUnexpectedEOF)

	noErr(t, bs.CompleteMultipart(t.Context(), key, id, []storage.Part{part}))
	wantContent(t, bs, key, data)
}
