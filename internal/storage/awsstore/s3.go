package awsstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// S3API is the part of *s3.Client the blob store calls, declared here so
// tests can fake it.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// blobContentType is stored on every object, so a presigned GET answers
// with it instead of S3's default binary/octet-stream.
const blobContentType = "application/octet-stream"

// BlobStore is the storage.BlobStore (and storage.Presigner) over one S3
// bucket. Object keys are the port's keys, unchanged. Bodies are streamed in
// both directions: memory use does not grow with object size.
//
// Build the client with S3ClientOptions so that streamed, unseekable bodies
// work against S3 and its HTTP stand-ins alike.
type BlobStore struct {
	client      S3API
	bucket      string
	presigner   S3Presigner
	ifNoneMatch bool
}

// blobOptions are the settings BlobOptions change; defaults are set in
// NewBlobStore.
type blobOptions struct {
	presigner   S3Presigner
	ifNoneMatch bool
}

// BlobOption configures NewBlobStore.
type BlobOption func(*blobOptions)

// WithIfNoneMatch makes every Put with an expected digest create-only: it
// sends If-None-Match: * and, when an object already exists at the key (S3
// answers 412 PreconditionFailed), returns nil without writing. That trusts
// the existing object to hold the expected bytes, which holds only when every
// key written with a digest is derived from that digest (content-addressed
// keys). The port otherwise promises that Put replaces, so the default is
// off.
//
// Why use it: a repeated push of a blob neither rewrites nor re-versions the
// object, and concurrent pushes of one blob cannot interleave replacements.
func WithIfNoneMatch() BlobOption {
	return func(o *blobOptions) { o.ifNoneMatch = true }
}

// NewBlobStore returns a BlobStore keeping objects in bucket through client.
// When client is an *s3.Client, PresignGet presigns with
// s3.NewPresignClient(client); otherwise it returns storage.ErrNoPresign.
func NewBlobStore(client S3API, bucket string, opts ...BlobOption) *BlobStore {
	var o blobOptions
	if c, ok := client.(*s3.Client); ok {
		o.presigner = s3.NewPresignClient(c)
	}
	for _, opt := range opts {
		opt(&o)
	}
	return &BlobStore{client: client, bucket: bucket, presigner: o.presigner, ifNoneMatch: o.ifNoneMatch}
}

// Put streams exactly size bytes from r to key. With an expected digest the
// bytes are hashed on the way and the last of them is held back unless they
// match, so S3 (or a stand-in that verifies nothing) never receives a whole
// body and stores nothing; for sha256 the checksum is also sent so that S3
// verifies it server-side.
func (s *BlobStore) Put(ctx context.Context, key string, size int64, expect digest.Digest, r io.Reader) error {
	if size < 0 {
		return fmt.Errorf("s3 put %q: negative size %d", key, size)
	}
	if expect != "" {
		if err := expect.Validate(); err != nil {
			return fmt.Errorf("s3 put %q: expected digest: %w", key, err)
		}
	}
	body := newS3Body(ctx, r, size, expect)
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(blobContentType),
	}
	if size == 0 {
		// The SDK sends no body when the length is 0, so nothing would read r:
		// check here that it is empty and hashes to expect.
		if err := body.finish(nil); err != nil {
			return fmt.Errorf("s3 put %q: %w", key, err)
		}
		in.Body = bytes.NewReader(nil)
	} else {
		in.Body = body
	}
	if expect != "" {
		if expect.Algorithm() == digest.SHA256 {
			raw, _ := hex.DecodeString(expect.Encoded()) // Validate checked the hex
			in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(raw))
		}
		if s.ifNoneMatch {
			in.IfNoneMatch = aws.String("*")
		}
	}
	_, err := s.client.PutObject(ctx, in)
	// A failure of the body (reader error, wrong size, digest mismatch) is the
	// cause whatever the SDK made of the aborted request.
	if berr := body.stop(); berr != nil {
		return fmt.Errorf("s3 put %q: %w", key, berr)
	}
	if err != nil {
		if s.ifNoneMatch && expect != "" && s3Code(err) == "PreconditionFailed" {
			return nil // the verified object is already there
		}
		return s3Error("put", key, err)
	}
	return nil
}

// Open returns length bytes of key from offset (length < 0: to the end).
// It asks S3 for exactly that range; only the cases S3 answers with 416 or
// cannot express (length 0) cost an extra HeadObject.
func (s *BlobStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("s3 open %q: negative offset %d", key, offset)
	}
	if length == 0 {
		return s.openEmpty(ctx, key, offset)
	}
	if length > math.MaxInt64-offset {
		length = -1 // past any object's end: read to the end
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if s3Code(err) == "InvalidRange" {
			// S3 answers 416 for a range starting at or past the end (and for
			// any range of an empty object): empty at the end, else an error.
			return s.openEmpty(ctx, key, offset)
		}
		return nil, s3Error("open", key, err)
	}
	return out.Body, nil
}

// openEmpty returns an empty reader if key exists and offset is within it.
func (s *BlobStore) openEmpty(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	size, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if offset > size {
		return nil, fmt.Errorf("s3 open %q: offset %d past the end (%d bytes)", key, offset, size)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// Stat returns the size of the object at key.
func (s *BlobStore) Stat(ctx context.Context, key string) (int64, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return 0, s3Error("stat", key, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Delete removes key; S3 itself treats a missing key as success.
func (s *BlobStore) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if err = s3Error("delete", key, err); errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

// List lists the objects under prefix after p.After: one ListObjectsV2 per
// 1,000 objects.
func (s *BlobStore) List(ctx context.Context, prefix string, p storage.Page) ([]storage.Object, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)}
	if p.After != "" {
		in.StartAfter = aws.String(p.After)
	}
	var out []storage.Object
	for {
		if p.Limit > 0 {
			in.MaxKeys = aws.Int32(int32(min(p.Limit-len(out), 1000)))
		}
		res, err := s.client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, s3Error("list", prefix, err)
		}
		for _, o := range res.Contents {
			out = append(out, storage.Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
		if !aws.ToBool(res.IsTruncated) || (p.Limit > 0 && len(out) >= p.Limit) {
			return out, nil
		}
		in.ContinuationToken, in.StartAfter = res.NextContinuationToken, nil
	}
}

// CreateMultipart starts a multipart upload to key.
func (s *BlobStore) CreateMultipart(ctx context.Context, key string) (string, error) {
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(key),
		ContentType: aws.String(blobContentType),
	})
	if err != nil {
		return "", s3Error("create multipart", key, err)
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart streams part n (exactly size bytes from r) to the upload.
func (s *BlobStore) UploadPart(ctx context.Context, key, uploadID string, n int, size int64, r io.Reader) (storage.Part, error) {
	if size < 0 {
		return storage.Part{}, fmt.Errorf("s3 upload part %d of %q: negative size %d", n, key, size)
	}
	if n < 1 || n > 10000 {
		return storage.Part{}, fmt.Errorf("s3 upload part %d of %q: part numbers run 1..10000", n, key)
	}
	body := newS3Body(ctx, r, size, "")
	in := &s3.UploadPartInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		UploadId:      aws.String(uploadID),
		PartNumber:    aws.Int32(int32(n)),
		ContentLength: aws.Int64(size),
	}
	if size == 0 {
		if err := body.finish(nil); err != nil {
			return storage.Part{}, fmt.Errorf("s3 upload part %d of %q: %w", n, key, err)
		}
		in.Body = bytes.NewReader(nil)
	} else {
		in.Body = body
	}
	out, err := s.client.UploadPart(ctx, in)
	if berr := body.stop(); berr != nil {
		return storage.Part{}, fmt.Errorf("s3 upload part %d of %q: %w", n, key, berr)
	}
	if err != nil {
		return storage.Part{}, s3Error(fmt.Sprintf("upload part %d of", n), key, err)
	}
	return storage.Part{Number: n, ETag: aws.ToString(out.ETag), Size: size}, nil
}

// CompleteMultipart assembles parts, in the order given, into key. S3 joins
// the parts in place: nothing is copied.
func (s *BlobStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) error {
	completed := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.Number)), ETag: aws.String(p.ETag)}
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	})
	if err != nil {
		return s3Error("complete multipart", key, err)
	}
	return nil
}

// AbortMultipart discards an upload; an unknown one (S3 NoSuchUpload) is
// not an error.
func (s *BlobStore) AbortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(key),
		UploadId: aws.String(uploadID),
	})
	if err != nil {
		if err = s3Error("abort multipart", key, err); errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}
