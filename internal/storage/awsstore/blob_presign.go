package awsstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/skiff-registry/skiff/internal/storage"
)

// maxPresignTTL is SigV4's limit on a presigned URL's lifetime. A URL signed
// with temporary credentials (a Lambda role) also dies with them, sooner.
const maxPresignTTL = 7 * 24 * time.Hour

// S3Presigner is the presign calls PresignGet and PresignPart make; *s3.PresignClient
// implements it.
type S3Presigner interface {
	PresignGetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
	PresignUploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
}

// PresignGet returns a URL that GETs the object at key for ttl, signed
// locally: it costs no request and does not check that the object exists.
// Never log the URL: it is a bearer credential until it expires.
func (s *BlobStore) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if s.presigner == nil {
		return "", fmt.Errorf("s3 presign get %q: no presigner (the client is not an *s3.Client): %w", key, storage.ErrNoPresign)
	}
	if ttl <= 0 || ttl > maxPresignTTL {
		return "", fmt.Errorf("s3 presign get %q: ttl %v outside (0, %v]", key, ttl, maxPresignTTL)
	}
	req, err := s.presigner.PresignGetObject(ctx,
		&s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", s3Error("presign get", key, err)
	}
	return req.URL, nil
}

// PresignPart returns a URL that PUTs part n of multipart upload uploadID
// at key for ttl, signed locally. The part's bytes then go from the client
// to S3 with no compute between; what they hold is the caller's to verify.
// Never log the URL.
func (s *BlobStore) PresignPart(ctx context.Context, key, uploadID string, n int, ttl time.Duration) (string, error) {
	if s.presigner == nil {
		return "", fmt.Errorf("s3 presign part %d of %q: no presigner (the client is not an *s3.Client): %w", n, key, storage.ErrNoPresign)
	}
	if ttl <= 0 || ttl > maxPresignTTL {
		return "", fmt.Errorf("s3 presign part %d of %q: ttl %v outside (0, %v]", n, key, ttl, maxPresignTTL)
	}
	if n < 1 || n > 10000 {
		return "", fmt.Errorf("s3 presign part %d of %q: part numbers are 1 to 10000", n, key)
	}
	req, err := s.presigner.PresignUploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID), PartNumber: aws.Int32(int32(n)),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", s3Error("presign part", key, err)
	}
	return req.URL, nil
}
