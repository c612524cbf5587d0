package awsstore

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// S3ClientOptions sets what the blob store needs of an *s3.Client, on real
// S3 and on HTTP stand-ins (gofakes3) alike:
//
//	client := s3.NewFromConfig(cfg, awsstore.S3ClientOptions)
//
// Pass it after any option that sets BaseEndpoint. Each setting and why:
//
//   - Unsigned payload (UNSIGNED-PAYLOAD instead of the body's SHA-256 in
//     the SigV4 signature). Put and UploadPart stream one-pass bodies. Over
//     plain HTTP the SDK would read the whole body to hash it, then fail to
//     rewind it ("failed to seek body to start"); over HTTPS it already
//     signs S3 payloads unsigned. TLS protects the bytes in transit, and
//     Put's x-amz-checksum-sha256 lets S3 verify them.
//   - RequestChecksumCalculation WhenRequired. The default (WhenSupported)
//     adds a CRC32 to every PutObject and UploadPart; for an unseekable body
//     it can only send it as an aws-chunked trailer, which it does only over
//     TLS: over plain HTTP it refuses the call ("unseekable stream is not
//     supported without TLS and trailing checksum"), and gofakes3 could not
//     decode the trailer anyway. Put sends its own SHA-256 checksum where it
//     knows the digest; other calls send none.
//   - ResponseChecksumValidation WhenRequired. The default makes GetObject
//     ask for (ChecksumMode ENABLED) and validate full-object checksums,
//     hashing every download a second time; gofakes3 also echoes the stored
//     x-amz-checksum-sha256 on ranged GETs, which then fail the check
//     ("checksum did not match"). Skiff verifies digests at upload, and TLS
//     covers downloads.
//   - UsePathStyle, only when an endpoint is configured (AWS_ENDPOINT_URL_S3
//     or BaseEndpoint): stand-ins serve /bucket/key on one host, where
//     virtual-hosted style would need DNS for bucket.127.0.0.1. Real S3
//     keeps its default, virtual-hosted style.
func S3ClientOptions(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, s3UnsignedPayload)
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	if o.BaseEndpoint != nil {
		o.UsePathStyle = true
	}
}

// s3UnsignedPayload swaps the payload-hash middleware for UNSIGNED-PAYLOAD in
// the operations that have one (Swap fails where the ID is absent).
func s3UnsignedPayload(stack *middleware.Stack) error {
	if _, ok := stack.Finalize.Get((&v4.UnsignedPayload{}).ID()); !ok {
		return nil
	}
	return v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware(stack)
}
