// The S3 tests run against the S3 named by AWS_ENDPOINT_URL_S3 or, when it
// names none, the in-memory stand-in (gofakes3 v1.2.0) started in the test
// process (testenv.S3), so plain `go test ./internal/storage/awsstore/`
// runs them. Each test makes its own bucket and removes it.
//
// What gofakes3 v1.2.0 does, probed with the SDK (v1.48.0, s3 v1.114.10)
// and read in its source (gofakes3.go, uploader.go, backend/s3mem):
//   - Checksums: it verifies Content-MD5 only. A wrong x-amz-checksum-sha256
//     is accepted; the header is stored as metadata and echoed on every GET
//     and HEAD, ranged ones included (so an SDK validating response checksums
//     fails ranged reads). Put's client-side check (the withheld last bytes)
//     is what keeps a mismatched body out here; real S3 also answers
//     BadDigest.
//   - Streaming uploads: it decodes STREAMING-AWS4-HMAC-SHA256-PAYLOAD only,
//     not aws-chunked trailers. Over plain HTTP the SDK defaults refuse an
//     unseekable body outright ("unseekable stream is not supported without
//     TLS and trailing checksum"; with checksums WhenRequired but a signed
//     payload: "failed to seek body to start"): see S3ClientOptions.
//   - No signature or credential checks, presigned URLs included.
//   - PutObject If-None-Match: * answers 412 PreconditionFailed, after
//     reading the whole body. CompleteMultipartUpload ignores If-None-Match
//     (real S3 honours it).
//   - Multipart (internal/standin's, over s3mem, in place of gofakes3's,
//     which copies a completed upload twice): CompleteMultipartUpload checks
//     each part's ETag (InvalidPart) and their order (InvalidPartOrder, as
//     S3); a completed or aborted upload is gone (NoSuchUpload). It does
//     NOT enforce the 5 MiB minimum for non-last parts (no EntityTooSmall).
//     0-byte parts are refused (411 MissingContentLength). Abort of an
//     unknown upload is NoSuchUpload, as on S3. ListMultipartUploads of a
//     bucket without uploads is an empty list. UploadPartCopy is missing.
//   - Range GET: single ranges, cut at the end; a start at or past the end
//     (or any range of an empty object) is 416 InvalidRange, as on S3.
//   - HEAD of a missing key, or in a missing bucket, is a bare 404 (the SDK's
//     generic NotFound); GET of a missing key is NoSuchKey, in a missing
//     bucket NoSuchBucket; DELETE of a missing key succeeds; as on S3.
//   - Memory: objects and parts are []byte in memory; completing a multipart
//     upload of N bytes peaks near 2N. Its disk backends need modules Skiff
//     does not require (s3afero: spf13/afero; s3bolt: mgo bson).
package awsstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/storagetest"
	"github.com/skiff-registry/skiff/internal/testenv"
)

var (
	_ storage.BlobStore = (*BlobStore)(nil)
	_ storage.Presigner = (*BlobStore)(nil)
	_ S3API             = (*s3.Client)(nil)
	_ S3Presigner       = (*s3.PresignClient)(nil)
)

// s3TestClient returns a client for the S3 stand-in (testenv.S3), built the
// way the server builds it, with a fresh Counter added.
func s3TestClient(t *testing.T) (*s3.Client, *Counter) {
	t.Helper()
	testenv.S3(t)
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	c := NewCounter()
	return s3.NewFromConfig(cfg, S3ClientOptions, s3.WithAPIOptions(c.Middleware)), c
}

// s3TestBucket creates an empty bucket with a random name and removes it,
// with whatever is left in it, when the test ends.
func s3TestBucket(t *testing.T, client *s3.Client) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	bucket := "skiff-test-" + hex.EncodeToString(b[:])
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled here.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s3EmptyBucket(ctx, client, bucket); err != nil {
			t.Errorf("empty bucket %s: %v", bucket, err)
			return
		}
		if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("delete bucket %s: %v", bucket, err)
		}
	})
	return bucket
}

// s3EmptyBucket deletes every object and aborts every upload in bucket.
func s3EmptyBucket(ctx context.Context, client *s3.Client, bucket string) error {
	objects := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for objects.HasMorePages() {
		page, err := objects.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				return err
			}
		}
	}
	uploads := s3.NewListMultipartUploadsPaginator(client, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	for uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		if s3Code(err) == "NoSuchUpload" {
			break // gofakes3: a bucket that never had an upload
		}
		if err != nil {
			return err
		}
		for _, u := range page.Uploads {
			_, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// s3TestStore returns a BlobStore on a fresh bucket, its client and counter.
func s3TestStore(t *testing.T, opts ...BlobOption) (*BlobStore, *s3.Client, *Counter) {
	t.Helper()
	client, counter := s3TestClient(t)
	bucket := s3TestBucket(t, client)
	counter.Reset() // count the store's requests, not the bucket's creation
	return NewBlobStore(client, bucket, opts...), client, counter
}

func TestS3BlobStore(t *testing.T) {
	testenv.S3(t) // once, not in each subtest
	storagetest.RunBlobStore(t, func(t *testing.T) storage.BlobStore {
		bs, _, _ := s3TestStore(t)
		return bs
	})
}

// s3Content returns the whole object at key, read with the raw client.
func s3Content(t *testing.T, client *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func TestS3PresignGet(t *testing.T) {
	bs, _, counter := s3TestStore(t)
	data := []byte("bytes a client fetches straight from S3")
	const key = "blobs/sha256/presigned"
	if err := bs.Put(t.Context(), key, int64(len(data)), digest.FromBytes(data), bytes.NewReader(data)); err != nil {
		t.Fatalf("put: %v", err)
	}
	before := counter.Snapshot()
	u, err := bs.PresignGet(t.Context(), key, 5*time.Minute)
	if err != nil {
		t.Fatalf("presign: %v", err)
	}
	if diff := cmp.Diff(counter.Snapshot(), before); diff != "" {
		t.Errorf("presigning sent requests (-got +want):\n%s", diff)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parse presigned URL: %v", err)
	}
	q := parsed.Query()
	if q.Get("X-Amz-Expires") != "300" || q.Get("X-Amz-Signature") == "" {
		t.Errorf("presigned URL query %v: want X-Amz-Expires=300 and a signature", q)
	}

	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET presigned URL: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read presigned GET: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET presigned URL: status %d: %s", resp.StatusCode, got)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("presigned GET: got %q, want %q", got, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != blobContentType {
		t.Errorf("presigned GET Content-Type: got %q, want %q", ct, blobContentType)
	}

	for _, ttl := range []time.Duration{0, -time.Second, 8 * 24 * time.Hour} {
		if _, err := bs.PresignGet(t.Context(), key, ttl); err == nil {
			t.Errorf("PresignGet with ttl %v: got no error", ttl)
		}
	}
}

func TestS3PresignGetWithoutPresigner(t *testing.T) {
	// Any S3API that is not an *s3.Client has no default presigner.
	bs := NewBlobStore(struct{ S3API }{}, "bucket")
	if _, err := bs.PresignGet(t.Context(), "k", time.Minute); !errors.Is(err, storage.ErrNoPresign) {
		t.Errorf("got error %v, want one wrapping %v", err, storage.ErrNoPresign)
	}
}

func TestS3PutIfNoneMatch(t *testing.T) {
	data := []byte("content-addressed bytes")
	d := digest.FromBytes(data)
	other := []byte("what a raw writer left at the key")
	key := "blobs/sha256/" + d.Encoded()

	t.Run("on: an existing object is kept", func(t *testing.T) {
		bs, client, counter := s3TestStore(t, WithIfNoneMatch())
		if err := bs.Put(t.Context(), key, int64(len(data)), d, bytes.NewReader(data)); err != nil {
			t.Fatalf("first put: %v", err)
		}
		// A second verified Put of the same key: accepted, nothing written.
		// To see that nothing was written, plant other bytes first (never
		// done by the core: its digest keys hold their digest's bytes).
		_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bs.bucket, Key: aws.String(key), Body: bytes.NewReader(other)})
		if err != nil {
			t.Fatalf("raw put: %v", err)
		}
		counter.Reset()
		if err := bs.Put(t.Context(), key, int64(len(data)), d, bytes.NewReader(data)); err != nil {
			t.Fatalf("second put: %v", err)
		}
		if diff := cmp.Diff(counter.Snapshot(), map[string]int{"S3.PutObject": 1}); diff != "" {
			t.Errorf("requests of the second put (-got +want):\n%s", diff)
		}
		if got := s3Content(t, client, bs.bucket, key); !bytes.Equal(got, other) {
			t.Errorf("second put wrote: got %q, want %q", got, other)
		}
		// A mismatch is still a mismatch, existing object or not.
		err = bs.Put(t.Context(), key, int64(len(data)), digest.FromString("x"), bytes.NewReader(data))
		if !errors.Is(err, storage.ErrDigestMismatch) {
			t.Errorf("mismatched put on an existing key: got %v, want %v", err, storage.ErrDigestMismatch)
		}
		// Without a digest there is no condition: Put replaces.
		if err := bs.Put(t.Context(), key, int64(len(data)), "", bytes.NewReader(data)); err != nil {
			t.Fatalf("unverified put: %v", err)
		}
		if got := s3Content(t, client, bs.bucket, key); !bytes.Equal(got, data) {
			t.Errorf("unverified put: got %q, want %q", got, data)
		}
	})

	t.Run("off: Put replaces", func(t *testing.T) {
		bs, client, _ := s3TestStore(t)
		_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bs.bucket, Key: aws.String(key), Body: bytes.NewReader(other)})
		if err != nil {
			t.Fatalf("raw put: %v", err)
		}
		if err := bs.Put(t.Context(), key, int64(len(data)), d, bytes.NewReader(data)); err != nil {
			t.Fatalf("put: %v", err)
		}
		if got := s3Content(t, client, bs.bucket, key); !bytes.Equal(got, data) {
			t.Errorf("put did not replace: got %q, want %q", got, data)
		}
	})
}

// TestS3PutMismatchStoresNothing checks that the stand-in, which verifies no
// checksum, still never stores a body that fails the digest: the request is
// sent, but its last bytes are not.
func TestS3PutMismatchStoresNothing(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	tests := []struct {
		name   string
		expect digest.Digest
	}{
		{"sha256", digest.SHA256.FromString("not these bytes")},
		{"sha512", digest.SHA512.FromString("not these bytes")},
		{"sha256 of all but the last byte", digest.SHA256.FromBytes(data[:len(data)-1])},
		{"sha512 of all but the last byte", digest.SHA512.FromBytes(data[:len(data)-1])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bs, _, counter := s3TestStore(t)
			err := bs.Put(t.Context(), "k", int64(len(data)), tc.expect, bytes.NewReader(data))
			if !errors.Is(err, storage.ErrDigestMismatch) {
				t.Fatalf("got error %v, want one wrapping %v", err, storage.ErrDigestMismatch)
			}
			// Exactly one attempt: a body failure is not retried.
			if got := counter.Snapshot()["S3.PutObject"]; got != 1 {
				t.Errorf("PutObject requests: got %d, want 1", got)
			}
			if sent, _ := counter.Bytes(); sent >= int64(len(data)) {
				t.Errorf("sent %d body bytes of %d: the last ones should have been withheld", sent, len(data))
			}
			if _, err := bs.Stat(t.Context(), "k"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("stat after mismatch: got %v, want %v", err, storage.ErrNotFound)
			}
		})
	}
}

// s3Stream is a deterministic pseudo-random stream of n bytes.
func s3Stream(seed uint64, n int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	return io.LimitReader(mrand.NewChaCha8(key), n)
}

// TestS3Streams checks that Put and Open hold no whole object in memory.
func TestS3Streams(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MiB each way")
	}
	const size = 64 << 20
	bs, _, counter := s3TestStore(t)
	h := digest.SHA256.Digester()
	io.Copy(h.Hash(), s3Stream(7, size))
	d := h.Digest()

	allocated := func() uint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.TotalAlloc
	}
	before := allocated()
	if err := bs.Put(t.Context(), "big", size, d, s3Stream(7, size)); err != nil {
		t.Fatalf("put: %v", err)
	}
	if got := allocated() - before; got > size/8 {
		t.Errorf("Put of %d bytes allocated %d bytes", size, got)
	}

	before = allocated()
	rc, err := bs.Open(t.Context(), "big", 0, -1)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	h = digest.SHA256.Digester()
	n, err := io.Copy(h.Hash(), rc)
	rc.Close()
	if err != nil || n != size || h.Digest() != d {
		t.Fatalf("read back %d bytes, digest %s, err %v; want %d bytes, %s", n, h.Digest(), err, size, d)
	}
	if got := allocated() - before; got > size/8 {
		t.Errorf("Open and read of %d bytes allocated %d bytes", size, got)
	}
	sent, received := counter.Bytes()
	if sent != size || received != size {
		t.Errorf("counted %d bytes sent, %d received; want %d each", sent, received, size)
	}
}

func TestS3Counter(t *testing.T) {
	bs, _, counter := s3TestStore(t)
	ctx := t.Context()
	data := []byte(strings.Repeat("counted ", 100))
	if err := bs.Put(ctx, "a", int64(len(data)), digest.FromBytes(data), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Stat(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	rc, err := bs.Open(ctx, "a", 100, 50)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data[100:150]) {
		t.Fatalf("range read: got %q, %v", got, err)
	}
	if _, err := bs.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat missing: %v", err)
	}
	if err := bs.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"S3.PutObject": 1, "S3.HeadObject": 2, "S3.GetObject": 1, "S3.DeleteObject": 1}
	if diff := cmp.Diff(counter.Snapshot(), want); diff != "" {
		t.Errorf("requests (-got +want):\n%s", diff)
	}
	if sent, received := counter.Bytes(); sent != int64(len(data)) || received != 50 {
		t.Errorf("bytes: got %d sent, %d received; want %d, 50", sent, received, len(data))
	}
	counter.Reset()
	if got := counter.Snapshot(); len(got) != 0 {
		t.Errorf("after Reset: %v", got)
	}
}
