package registry_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/teststores"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// TestDigestAlgorithms: an upload is hashed with sha256, and with sha512
// if its POST named it (digest-algorithm=sha512) or, naming nothing, while
// it is at most the speculative limit long; past it a sha512 commit is
// refused with a message saying how to push it. Edges: at the limit, one
// byte over, across requests (the state saved holds what is hashed).
func TestDigestAlgorithms(t *testing.T) {
	t.Parallel()
	const part, minPart, limit = 64 << 10, 40 << 10, 200 << 10
	ctx := context.Background()
	sha512Of := func(b []byte) digest.Digest {
		return digest.NewDigestFromBytes(digest.SHA512, func() []byte { s := sha512.Sum512(b); return s[:] }())
	}
	for name, open := range teststores.Backends(t, minPart) {
		for _, tc := range []struct {
			name   string
			named  digest.Algorithm // "": StartUpload
			size   int
			chunks int // requests the body is sent in
			commit digest.Algorithm
			want   string // error substring; empty: committed
		}{
			{name: "nothing named, at the limit, sha512", size: limit, chunks: 1, commit: digest.SHA512},
			{name: "nothing named, one byte over, sha512", size: limit + 1, chunks: 1, commit: digest.SHA512, want: "push it again from POST /v2/r/blobs/uploads/?digest-algorithm=sha512"},
			{name: "nothing named, one byte over, sha256", size: limit + 1, chunks: 1, commit: digest.SHA256},
			{name: "nothing named, over in chunks, sha256", size: 3 * limit, chunks: 5, commit: digest.SHA256},
			{name: "nothing named, under in chunks, sha512", size: limit - 7, chunks: 3, commit: digest.SHA512},
			{name: "sha512 named, far over in chunks", named: digest.SHA512, size: 4 * limit, chunks: 6, commit: digest.SHA512},
			{name: "sha512 named, committed as sha256", named: digest.SHA512, size: 2 * limit, chunks: 2, commit: digest.SHA256},
			{name: "sha256 named, committed as sha512", named: digest.SHA256, size: 1000, chunks: 1, commit: digest.SHA512, want: "opened with digest-algorithm=sha256"},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				reg, err := registry.New(s.Blobs, s.Meta, registry.WithPartSize(part, minPart), registry.WithSpeculativeMax(limit))
				if err != nil {
					t.Fatal(err)
				}
				body := bytes.Repeat([]byte(tc.name), tc.size/len(tc.name)+1)[:tc.size]
				d := digest.FromBytes(body)
				if tc.commit == digest.SHA512 {
					d = sha512Of(body)
				}
				start := reg.StartUpload
				if tc.named != "" {
					start = func(ctx context.Context, repo string) (storage.Upload, error) {
						return reg.StartUploadFor(ctx, repo, tc.named)
					}
				}
				u, err := start(ctx, "r")
				if err != nil {
					t.Fatal(err)
				}
				step := (tc.size + tc.chunks - 1) / tc.chunks
				for off := 0; off < tc.size; off += step {
					if _, err := reg.WriteUpload(ctx, "r", u.ID, int64(off), bytes.NewReader(body[off:min(off+step, tc.size)])); err != nil {
						t.Fatalf("chunk at %d: %v", off, err)
					}
				}
				b, err := reg.CommitUpload(ctx, "r", u.ID, d, -1, 0, nil)
				if tc.want == "" {
					if err != nil || b.Digest != d || b.Size != int64(tc.size) {
						t.Fatalf("commit: %+v, %v", b, err)
					}
					return
				}
				var oe *oci.Error
				if !errors.As(err, &oe) || oe.Code != oci.CodeDigestInvalid || !strings.Contains(oe.Message, tc.want) {
					t.Fatalf("commit: %v, want DIGEST_INVALID saying %q", err, tc.want)
				}
			})
		}
	}
	reg, err := registry.New(teststores.Local(t, minPart).Blobs, teststores.Local(t, minPart).Meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []digest.Algorithm{"sha1", "SHA512", "sha384", "x"} {
		var oe *oci.Error
		if _, err := reg.StartUploadFor(ctx, "r", alg); !errors.As(err, &oe) || oe.Code != oci.CodeDigestInvalid {
			t.Errorf("StartUploadFor(%q): %v, want DIGEST_INVALID", alg, err)
		}
	}
}

// TestDigestStateMismatch: a saved hash state that does not cover the
// session's bytes (a server that knew no pruning restarted the hash
// mid-stream) does not verify a commit: a digest of the bytes it covers
// is refused.
func TestDigestStateMismatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := teststores.Local(t, 40<<10)
	reg, err := registry.New(s.Blobs, s.Meta, registry.WithPartSize(64<<10, 40<<10))
	if err != nil {
		t.Fatal(err)
	}
	first, second := bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000)
	u, err := reg.StartUpload(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	for i, chunk := range [][]byte{first, second} {
		if _, err := reg.WriteUpload(ctx, "r", u.ID, int64(i*1000), bytes.NewReader(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := s.Meta.GetUpload(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := sha512.New()
	h.Write(second)
	st, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
	stored.HashState["sha512"] = st
	if err := s.Meta.UpdateUpload(ctx, stored, stored.Version); err != nil {
		t.Fatal(err)
	}
	stored.Version++
	suffix := digest.NewDigestFromBytes(digest.SHA512, h.Sum(nil))
	var oe *oci.Error
	if _, err := reg.CommitUpload(ctx, "r", u.ID, suffix, -1, 0, nil); !errors.As(err, &oe) || oe.Code != oci.CodeDigestInvalid {
		t.Fatalf("commit with the digest of the bytes a stray state covers: %v, want DIGEST_INVALID", err)
	}
}
