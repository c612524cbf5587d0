package awsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// drain reads b the way net/http does and returns what it delivered.
func drain(b io.Reader) ([]byte, error) {
	var out bytes.Buffer
	_, err := io.Copy(&out, b)
	return out.Bytes(), err
}

func TestS3Body(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefgh"), 4096)
	errSource := errors.New("source failed")
	tests := []struct {
		name string
		r    io.Reader
		size int64
		want digest.Digest
		err  error // nil: all of data delivered
	}{
		{"exact, no digest", bytes.NewReader(data), int64(len(data)), "", nil},
		{"sha256", bytes.NewReader(data), int64(len(data)), digest.SHA256.FromBytes(data), nil},
		{"sha512", bytes.NewReader(data), int64(len(data)), digest.SHA512.FromBytes(data), nil},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data)), int64(len(data)), digest.FromBytes(data), nil},
		{"data then EOF together", iotest.DataErrReader(bytes.NewReader(data)), int64(len(data)), digest.FromBytes(data), nil},
		{"sha256 mismatch", bytes.NewReader(data), int64(len(data)), digest.FromString("x"), storage.ErrDigestMismatch},
		{"sha512 mismatch", iotest.OneByteReader(bytes.NewReader(data)), int64(len(data)), digest.SHA512.FromString("x"), storage.ErrDigestMismatch},
		{"short", bytes.NewReader(data), int64(len(data)) + 1, "", io.ErrUnexpectedEOF},
		{"long", bytes.NewReader(data), int64(len(data)) - 1, "", errBodyTooLong},
		{"long, digest of the first size bytes", bytes.NewReader(data), 8, digest.FromBytes(data[:8]), errBodyTooLong},
		{"source error", io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(errSource)), int64(len(data)), "", errSource},
		{"source error after the last byte", io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errSource)), int64(len(data)), "", errSource},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newS3Body(t.Context(), tc.r, tc.size, tc.want)
			got, err := drain(b)
			if tc.err == nil {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("got %d bytes, error %v; want all %d bytes", len(got), err, len(data))
				}
				if err := b.stop(); err != nil {
					t.Errorf("stop: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("got error %v, want one wrapping %v", err, tc.err)
			}
			if int64(len(got)) >= tc.size {
				t.Errorf("delivered %d of %d bytes: the last must be withheld", len(got), tc.size)
			}
			if (retry.RetryableError{}).IsErrorRetryable(err) != aws.FalseTernary {
				t.Errorf("body error %v is not marked non-retryable", err)
			}
			if serr := b.stop(); !errors.Is(serr, tc.err) {
				t.Errorf("stop: got %v, want the read error", serr)
			}
		})
	}
}

func TestS3BodyCancelled(t *testing.T) {
	data := bytes.Repeat([]byte("z"), 1<<20)
	ctx, cancel := context.WithCancel(t.Context())
	b := newS3Body(ctx, bytes.NewReader(data), int64(len(data)), "")
	buf := make([]byte, 1000)
	if _, err := b.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	got, err := drain(b)
	if !errors.Is(err, context.Canceled) || len(got) != 0 {
		t.Errorf("after cancel: got %d bytes, error %v; want none and context.Canceled", len(got), err)
	}
}

func TestS3BodyStopped(t *testing.T) {
	r := &countingSource{r: bytes.NewReader(make([]byte, 100))}
	b := newS3Body(t.Context(), r, 100, "")
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Read(make([]byte, 10)); n != 0 || !errors.Is(err, errBodyStopped) {
		t.Errorf("read after stop: %d, %v", n, err)
	}
	if r.reads != 0 {
		t.Errorf("read after stop touched the source %d times", r.reads)
	}
}

type countingSource struct {
	r     io.Reader
	reads int
}

func (c *countingSource) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

func TestS3BodyEmpty(t *testing.T) {
	empty := digest.FromBytes(nil)
	if err := newS3Body(t.Context(), bytes.NewReader(nil), 0, empty).finish(nil); err != nil {
		t.Errorf("empty body, right digest: %v", err)
	}
	if err := newS3Body(t.Context(), bytes.NewReader(nil), 0, digest.FromString("x")).finish(nil); !errors.Is(err, storage.ErrDigestMismatch) {
		t.Errorf("empty body, wrong digest: %v", err)
	}
	if err := newS3Body(t.Context(), bytes.NewReader([]byte("x")), 0, "").finish(nil); err == nil {
		t.Error("size 0, one byte: got no error")
	}
	if err := newS3Body(t.Context(), iotest.ErrReader(io.ErrClosedPipe), 0, "").finish(nil); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("size 0, failing reader: %v", err)
	}
}

func TestS3Error(t *testing.T) {
	api := func(code string) error {
		return fmt.Errorf("operation error S3: X: %w", &smithy.GenericAPIError{Code: code, Message: "m"})
	}
	tests := []struct {
		name string
		err  error
		want error // nil: no sentinel
	}{
		{"typed NoSuchKey", fmt.Errorf("op: %w", &types.NoSuchKey{}), storage.ErrNotFound},
		{"typed NotFound", fmt.Errorf("op: %w", &types.NotFound{}), storage.ErrNotFound},
		{"typed NoSuchUpload", fmt.Errorf("op: %w", &types.NoSuchUpload{}), storage.ErrNotFound},
		{"HEAD 404", api("NotFound"), storage.ErrNotFound},
		{"InvalidPart", api("InvalidPart"), storage.ErrConflict},
		{"PreconditionFailed", api("PreconditionFailed"), storage.ErrExists},
		{"BadDigest", api("BadDigest"), storage.ErrDigestMismatch},
		{"NoSuchBucket stays a fault", api("NoSuchBucket"), nil},
		{"cancelled", fmt.Errorf("op: %w", context.Canceled), context.Canceled},
	}
	sentinels := []error{storage.ErrNotFound, storage.ErrConflict, storage.ErrExists, storage.ErrDigestMismatch}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s3Error("get", "k", tc.err)
			if tc.want != nil && !errors.Is(got, tc.want) {
				t.Errorf("got %v, want one wrapping %v", got, tc.want)
			}
			for _, s := range sentinels {
				if !errors.Is(tc.want, s) && errors.Is(got, s) {
					t.Errorf("got %v, which wraps %v too", got, s)
				}
			}
		})
	}
}
