package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// partURLs gives any blob store the direct upload capability: the "URL"
// of a part names it, and the test's client stores the part through the
// port, as S3 would from a presigned PUT.
type partURLs struct {
	storage.BlobStore
}

func (p partURLs) PresignPart(_ context.Context, key, uploadID string, n int, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("ttl %v", ttl)
	}
	return fmt.Sprintf("part:%d", n), nil
}

const directPart = 64 << 10

func newDirectRegistry(t *testing.T, s stores, opts ...registry.Option) (*registry.Registry, stores) {
	t.Helper()
	s.blobs = partURLs{s.blobs}
	return newRegistryOn(t, s, append([]registry.Option{registry.WithDirectPart(directPart), registry.WithDirectStep(time.Nanosecond)}, opts...)...), s
}

// uploadParts stores data as the parts du lists, as a client PUTs them
// to their URLs, and returns what the completion names.
func uploadParts(t *testing.T, s stores, du registry.DirectUpload, data []byte) []storage.Part {
	t.Helper()
	var parts []storage.Part
	off := int64(0)
	for _, p := range du.Parts {
		end := min(off+p.Size, int64(len(data)))
		if p.Number == len(du.Parts) {
			end = int64(len(data)) // a client may send more than it said
		}
		got, err := s.blobs.UploadPart(context.Background(), du.Upload.Key, du.Upload.MultipartID, p.Number, end-off, bytes.NewReader(data[off:end]))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, got)
		off = end
	}
	return parts
}

// finishDirect completes a direct upload and verifies it to the end,
// counting the requests that took.
func finishDirect(t *testing.T, reg *registry.Registry, repo string, du registry.DirectUpload, d digest.Digest, parts []storage.Part) (storage.Blob, int, error) {
	t.Helper()
	ctx := context.Background()
	b, st, err := reg.CompleteDirectUpload(ctx, repo, du.Upload.ID, d, parts)
	calls := 1
	for err == nil && b.Digest == "" {
		if st.Verified >= st.Size && st.Size > 0 {
			t.Fatalf("verified %d of %d without a blob", st.Verified, st.Size)
		}
		b, st, err = reg.VerifyDirectUpload(ctx, repo, du.Upload.ID)
		calls++
		if calls > 1000 {
			t.Fatal("verification never ends")
		}
	}
	return b, calls, err
}

// TestDirectUpload: a blob whose parts the client stored itself is
// assembled, hashed by the registry over several requests (one buffer a
// step here) and linked; parts that hash to another digest, hold another
// size or are missing are refused, and nothing of them is ever a blob.
func TestDirectUpload(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, s stores) {
		reg, s := newDirectRegistry(t, s)
		ctx := context.Background()
		const repo = "direct/app"
		data := randomBytes(t, 2*directPart+directPart/3)
		d := digest.FromBytes(data)

		du, err := reg.StartDirectUpload(ctx, repo, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if len(du.Parts) != 3 || du.Parts[2].Size != directPart/3 || du.Parts[0].URL != "part:1" {
			t.Fatalf("parts %+v, want 3 of %d, %d, %d", du.Parts, directPart, directPart, directPart/3)
		}
		if _, err := reg.StatBlob(ctx, repo, d); err == nil {
			t.Fatal("the blob exists before its parts are verified")
		}
		b, calls, err := finishDirect(t, reg, repo, du, d, uploadParts(t, s, du, data))
		if err != nil {
			t.Fatal(err)
		}
		if b.Digest != d || b.Size != int64(len(data)) {
			t.Errorf("blob %+v", b)
		}
		if calls < 2 {
			t.Errorf("verified in %d call, want the hash spread over several", calls)
		}
		if got := readBlob(t, reg, repo, d); !bytes.Equal(got, data) {
			t.Error("the blob reads back different")
		}

		// sha512, hashed over several requests too.
		big := randomBytes(t, directPart+7)
		d512 := digest.SHA512.FromBytes(big)
		du512, err := reg.StartDirectUpload(ctx, repo, int64(len(big)))
		if err != nil {
			t.Fatal(err)
		}
		if b, _, err := finishDirect(t, reg, repo, du512, d512, uploadParts(t, s, du512, big)); err != nil || b.Digest != d512 {
			t.Fatalf("a sha512 direct upload: %+v %v", b, err)
		}

		// The same bytes again, into another repository: linked to the
		// copy stored, the second object deleted.
		du2, err := reg.StartDirectUpload(ctx, "direct/other", int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := finishDirect(t, reg, "direct/other", du2, d, uploadParts(t, s, du2, data)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.blobs.Stat(ctx, du2.Upload.Key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the second copy's object: %v, want it deleted", err)
		}

		for _, tc := range []struct {
			name  string
			data  []byte
			claim digest.Digest
			parts func([]storage.Part) []storage.Part
			code  oci.ErrorCode
		}{
			{"other bytes", randomBytes(t, len(data)), d, nil, oci.CodeDigestInvalid},
			{"one byte more", append(randomBytes(t, len(data)), 1), "", nil, oci.CodeSizeInvalid},
			{"a part missing", data, d, func(p []storage.Part) []storage.Part { return p[:2] }, oci.CodeBlobUploadInvalid},
			{"a wrong ETag", data, d, func(p []storage.Part) []storage.Part { p[1].ETag = `"0000"`; return p }, oci.CodeBlobUploadInvalid},
			{"parts out of order", data, d, func(p []storage.Part) []storage.Part { p[0], p[1] = p[1], p[0]; return p }, oci.CodeBlobUploadInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				repo := "direct/bad"
				claim := tc.claim
				if claim == "" {
					claim = digest.FromBytes(tc.data)
				}
				du, err := reg.StartDirectUpload(ctx, repo, int64(len(data)))
				if err != nil {
					t.Fatal(err)
				}
				parts := uploadParts(t, s, du, tc.data)
				if tc.parts != nil {
					parts = tc.parts(parts)
				}
				_, _, err = finishDirect(t, reg, repo, du, claim, parts)
				if !isCode(err, tc.code) {
					t.Fatalf("error %v, want %s", err, tc.code)
				}
				if _, err := reg.StatBlob(ctx, repo, claim); err == nil {
					t.Error("the refused upload is a blob")
				}
				if tc.code != oci.CodeBlobUploadInvalid {
					if _, err := s.blobs.Stat(ctx, du.Upload.Key); !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("the refused upload's object: %v, want it deleted", err)
					}
					if _, err := reg.UploadStatus(ctx, repo, du.Upload.ID); !isCode(err, oci.CodeBlobUploadUnknown) {
						t.Errorf("the refused session: %v, want it ended", err)
					}
				}
			})
		}
	})
}

// TestDirectUploadKinds: the spec's requests refuse a direct session and
// the direct ones a spec session; a store without presigning refuses to
// open one; sizes outside 1 byte to the largest are refused.
func TestDirectUploadKinds(t *testing.T) {
	t.Parallel()
	s := localStores(t)
	ctx := context.Background()
	plain := newRegistryOn(t, s)
	if _, err := plain.StartDirectUpload(ctx, "k/app", 10); !isCode(err, oci.CodeUnsupported) {
		t.Errorf("a store without presigning: %v, want UNSUPPORTED", err)
	}
	reg, _ := newDirectRegistry(t, s)
	for _, size := range []int64{0, -1, registry.DirectMaxSize + 1} {
		if _, err := reg.StartDirectUpload(ctx, "k/app", size); !isCode(err, oci.CodeSizeInvalid) {
			t.Errorf("size %d: %v, want SIZE_INVALID", size, err)
		}
	}
	du, err := reg.StartDirectUpload(ctx, "k/app", 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.WriteUpload(ctx, "k/app", du.Upload.ID, 0, bytes.NewReader([]byte("x"))); !isCode(err, oci.CodeBlobUploadInvalid) {
		t.Errorf("PATCH on a direct session: %v", err)
	}
	if _, err := reg.CommitUpload(ctx, "k/app", du.Upload.ID, digest.FromString("x"), -1, 1, bytes.NewReader([]byte("x"))); !isCode(err, oci.CodeBlobUploadInvalid) {
		t.Errorf("PUT on a direct session: %v", err)
	}
	if _, _, err := reg.CompleteDirectUpload(ctx, "other/app", du.Upload.ID, digest.FromString("x"), nil); !isCode(err, oci.CodeBlobUploadUnknown) {
		t.Errorf("a direct session from another repository: %v", err)
	}
	u, _ := reg.StartUpload(ctx, "k/app")
	if _, err := reg.WriteUpload(ctx, "k/app", u.ID, 0, bytes.NewReader([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.CompleteDirectUpload(ctx, "k/app", u.ID, digest.FromString("x"), nil); !isCode(err, oci.CodeBlobUploadInvalid) {
		t.Errorf("a direct completion of a spec session: %v", err)
	}
}

// statFails fails the first Stat after its countdown, as a request that
// dies right after S3 assembled the parts (before the session says so).
type statFails struct {
	partURLs
	fail *atomic.Int64
}

func (s statFails) Stat(ctx context.Context, key string) (int64, error) {
	if s.fail.Add(-1) == 0 {
		return 0, errors.New("the function died")
	}
	return s.partURLs.Stat(ctx, key)
}

// openGate holds every Open until released, and says when one waits.
type openGate struct {
	partURLs
	waiting chan struct{}
	release chan struct{}
}

func (g openGate) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	select {
	case g.waiting <- struct{}{}:
	default:
	}
	<-g.release
	return g.partURLs.Open(ctx, key, off, n)
}

// TestDirectUploadRecovers: a completion that died after S3 assembled the
// parts is finished by the client's retry of it; a cancel while a request
// hashes the upload is refused (it would delete what that request makes a
// blob of), and the upload then ends as a blob.
func TestDirectUploadRecovers(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, s stores) {
		ctx := context.Background()
		data := randomBytes(t, directPart+directPart/2)
		d := digest.FromBytes(data)

		fail := &atomic.Int64{}
		s1 := s
		s1.blobs = statFails{partURLs{s.blobs}, fail}
		reg := newRegistryOn(t, s1, registry.WithDirectPart(directPart))
		du, err := reg.StartDirectUpload(ctx, "rec/app", int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		parts := uploadParts(t, s, du, data)
		fail.Store(1)
		if _, _, err := reg.CompleteDirectUpload(ctx, "rec/app", du.Upload.ID, d, parts); err == nil {
			t.Fatal("the completion that died succeeded")
		}
		b, _, err := finishDirect(t, reg, "rec/app", du, d, parts)
		if err != nil || b.Digest != d {
			t.Fatalf("the retry after the dead completion: %+v %v", b, err)
		}
		if got := readBlob(t, reg, "rec/app", d); !bytes.Equal(got, data) {
			t.Error("the blob differs")
		}

		gate := openGate{partURLs{s.blobs}, make(chan struct{}, 1), make(chan struct{})}
		s2 := s
		s2.blobs = gate
		reg2 := newRegistryOn(t, s2, registry.WithDirectPart(directPart))
		other := randomBytes(t, directPart+3)
		d2 := digest.FromBytes(other)
		du2, err := reg2.StartDirectUpload(ctx, "rec/app", int64(len(other)))
		if err != nil {
			t.Fatal(err)
		}
		parts2 := uploadParts(t, s, du2, other)
		done := make(chan error, 1)
		go func() {
			_, _, err := finishDirect(t, reg2, "rec/app", du2, d2, parts2)
			done <- err
		}()
		<-gate.waiting
		var re *registry.RangeError
		if err := reg2.CancelUpload(ctx, "rec/app", du2.Upload.ID); !errors.As(err, &re) {
			t.Errorf("a cancel while the upload is hashed: %v, want a 416", err)
		}
		close(gate.release)
		if err := <-done; err != nil {
			t.Fatalf("the upload after the refused cancel: %v", err)
		}
		if got := readBlob(t, reg2, "rec/app", d2); !bytes.Equal(got, other) {
			t.Error("the second blob differs")
		}
	})
}
