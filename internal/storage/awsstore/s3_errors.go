package awsstore

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/skiff-registry/skiff/internal/storage"
)

// s3Sentinels maps S3 error codes onto the storage sentinels.
var s3Sentinels = map[string]error{
	// HeadObject has no body to carry a code: the SDK reports a 404 as the
	// generic "NotFound".
	"NoSuchKey":    storage.ErrNotFound,
	"NotFound":     storage.ErrNotFound,
	"NoSuchUpload": storage.ErrNotFound,
	// CompleteMultipartUpload with a part (number, ETag) S3 does not hold,
	// parts out of order, or a part but the last under 5 MiB: parts a
	// client uploaded itself (a direct upload) can be any of them.
	"InvalidPart":      storage.ErrConflict,
	"InvalidPartOrder": storage.ErrConflict,
	"EntityTooSmall":   storage.ErrConflict,
	// If-None-Match: * found an object; a concurrent conditional write to the
	// same key is in flight.
	"PreconditionFailed":         storage.ErrExists,
	"ConditionalRequestConflict": storage.ErrConflict,
	// The sent checksum does not match the bytes S3 received.
	"BadDigest":                   storage.ErrDigestMismatch,
	"XAmzContentChecksumMismatch": storage.ErrDigestMismatch,
}

// s3Code returns the S3 error code in err, or "".
func s3Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// s3Error translates an S3 error into a storage sentinel where one applies,
// with the operation and key as context. NoSuchBucket deliberately stays an
// unmapped error: a missing bucket is a deployment fault, not a missing blob
// (HeadObject can't tell: its 404 has no body, so Stat in a missing bucket
// reports ErrNotFound).
// Other errors (context cancellation included) stay wrapped for errors.Is.
func s3Error(op, key string, err error) error {
	var (
		noKey    *types.NoSuchKey
		notFound *types.NotFound
		noUpload *types.NoSuchUpload
	)
	if errors.As(err, &noKey) || errors.As(err, &notFound) || errors.As(err, &noUpload) {
		return fmt.Errorf("s3 %s %q: %w (%v)", op, key, storage.ErrNotFound, err)
	}
	if sentinel, ok := s3Sentinels[s3Code(err)]; ok {
		return fmt.Errorf("s3 %s %q: %w (%v)", op, key, sentinel, err)
	}
	return fmt.Errorf("s3 %s %q: %w", op, key, err)
}
