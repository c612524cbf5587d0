package registry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/pkg/oci"
)

const (
	part    = 64 << 10
	minPart = 40 << 10
)

func newRegistry(t testing.TB) *registry.Registry {
	t.Helper()
	st := localStores(t)
	reg, err := registry.New(st.blobs, st.meta, registry.WithPartSize(part, minPart))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func readBlob(t *testing.T, reg *registry.Registry, repo string, d digest.Digest) []byte {
	t.Helper()
	rec, err := reg.StatBlob(context.Background(), repo, d)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := reg.OpenBlob(context.Background(), rec, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChunkedUploads pushes blobs in chunks of many sizes (below, at and
// above the part sizes, and streams without ranges) and checks the stored
// bytes and digests, for sha256 and sha512.
func TestChunkedUploads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		size   int
		chunks []int // chunk sizes; the rest goes with the final PUT
		ranged bool
	}{
		{"empty", 0, nil, true},
		{"one small chunk", 1000, []int{1000}, true},
		{"tiny chunks merge", 20_000, []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}, true},
		{"chunks below min part", 200_000, []int{30_000, 30_000, 30_000, 30_000}, true},
		{"chunks of a part", 5 * part, []int{part, part, part, part, part}, true},
		{"chunks above a part", 5*part + 17, []int{part + 1, 2*part + 5, part}, true},
		{"last chunk in PUT", 3*part + 100, []int{part, part}, true},
		{"stream without ranges", 3*part + 100, []int{3*part + 100}, false},
	}
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		for _, tc := range tests {
			t.Run(string(alg)+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				reg := newRegistry(t)
				data := randomBytes(t, tc.size)
				d := alg.FromBytes(data)
				u, err := reg.StartUpload(ctx, "r/one")
				if err != nil {
					t.Fatal(err)
				}
				off := 0
				for _, n := range tc.chunks {
					start := int64(off)
					if !tc.ranged {
						start = -1
					}
					got, err := reg.WriteUpload(ctx, "r/one", u.ID, start, bytes.NewReader(data[off:off+n]))
					if err != nil {
						t.Fatalf("chunk at %d: %v", off, err)
					}
					off += n
					if got.Offset != int64(off) {
						t.Fatalf("offset after chunk: got %d, want %d", got.Offset, off)
					}
				}
				rest := data[off:]
				b, err := reg.CommitUpload(ctx, "r/one", u.ID, d, int64(off), int64(len(rest)), bytes.NewReader(rest))
				if err != nil {
					t.Fatalf("commit: %v", err)
				}
				if b.Digest != d || b.Size != int64(tc.size) {
					t.Fatalf("blob: got %s/%d, want %s/%d", b.Digest, b.Size, d, tc.size)
				}
				if got := readBlob(t, reg, "r/one", d); !bytes.Equal(got, data) {
					t.Fatalf("stored bytes differ (len %d vs %d)", len(got), len(data))
				}
				// A session that stored bytes ends with a tombstone; one
				// pushed whole in the PUT never wrote an item (sessions.go).
				if _, err := reg.UploadStatus(ctx, "r/one", u.ID); len(tc.chunks) > 0 && !isCode(err, oci.CodeBlobUploadUnknown) {
					t.Errorf("session after commit: %v", err)
				}
			})
		}
	}
}

func isCode(err error, code oci.ErrorCode) bool {
	var oe *oci.Error
	return errors.As(err, &oe) && oe.Code == code
}

// failingReader yields n bytes then fails, like a client that disconnects.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// TestResumeAfterBrokenStream: a stream that breaks mid-way keeps the
// parts it completed; the client resumes from the session's offset.
func TestResumeAfterBrokenStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := newRegistry(t)
	data := randomBytes(t, 4*part+123)
	u, err := reg.StartUpload(ctx, "r/one")
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.WriteUpload(ctx, "r/one", u.ID, -1, &failingReader{r: bytes.NewReader(data), n: 2*part + 500})
	if err == nil {
		t.Fatal("broken stream succeeded")
	}
	st, err := reg.UploadStatus(ctx, "r/one", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Offset != 2*part {
		t.Fatalf("offset after broken stream: got %d, want %d (two whole parts)", st.Offset, 2*part)
	}
	if _, err := reg.WriteUpload(ctx, "r/one", u.ID, st.Offset, bytes.NewReader(data[st.Offset:])); err != nil {
		t.Fatal(err)
	}
	b, err := reg.CommitUpload(ctx, "r/one", u.ID, digest.FromBytes(data), -1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, reg, "r/one", b.Digest); !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs")
	}
}

// BenchmarkCommit measures the commit (PUT ?digest=) of an upload whose
// bytes were already sent: it must cost the same for 1 KiB and 64 MiB
// because nothing is copied or re-read.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20, 64 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			ctx := context.Background()
			reg := newRegistry(b)
			data := randomBytes(b, size)
			d := digest.FromBytes(data)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				u, err := reg.StartUpload(ctx, "bench/commit")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := reg.WriteUpload(ctx, "bench/commit", u.ID, 0, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := reg.CommitUpload(ctx, "bench/commit", u.ID, d, -1, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}
