package standin_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/skiff-registry/skiff/internal/standin"
)

func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestMultipart: the stand-in's multipart uploads answer as S3 does, with
// the SDK: parts listed in pages, uploads listed by key, a completion that
// names a wrong ETag or parts out of order refused, a completed or aborted
// upload gone, and the object the parts in order.
func TestMultipart(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(standin.S3Handler(log.New(io.Discard, "", 0), false))
	t.Cleanup(ts.Close)
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	ctx := context.Background()
	b := aws.String("bucket")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("nobucket"), Key: aws.String("k")}); s3Code(err) != "NoSuchBucket" {
		t.Errorf("an upload into no bucket: %v", err)
	}
	start := func(key string) *string {
		out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return out.UploadId
	}
	id, other := start("k"), start("j")
	var parts []types.CompletedPart
	var want []byte
	for n := int32(1); n <= 3; n++ {
		body := bytes.Repeat([]byte{byte('a' + n)}, int(n)*1000)
		want = append(want, body...)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("k"), UploadId: id, PartNumber: aws.Int32(n), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
	}
	page, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("k"), UploadId: id, MaxParts: aws.Int32(2)})
	if err != nil || len(page.Parts) != 2 || !aws.ToBool(page.IsTruncated) {
		t.Fatalf("first page of parts: %+v %v", page, err)
	}
	page, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("k"), UploadId: id, PartNumberMarker: page.NextPartNumberMarker})
	if err != nil || len(page.Parts) != 1 || aws.ToInt32(page.Parts[0].PartNumber) != 3 || aws.ToInt64(page.Parts[0].Size) != 3000 {
		t.Fatalf("second page of parts: %+v %v", page, err)
	}
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b})
	if err != nil || len(ups.Uploads) != 2 || aws.ToString(ups.Uploads[0].Key) != "j" {
		t.Fatalf("uploads: %+v %v", ups, err)
	}
	complete := func(ps ...types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("k"), UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: ps}})
		return err
	}
	if err := complete(parts[1], parts[0], parts[2]); s3Code(err) != "InvalidPartOrder" {
		t.Errorf("parts out of order: %v", err)
	}
	bad := parts[1]
	bad.ETag = aws.String(`"00000000000000000000000000000000"`)
	if err := complete(parts[0], bad, parts[2]); s3Code(err) != "InvalidPart" {
		t.Errorf("a wrong ETag: %v", err)
	}
	if err := complete(parts...); err != nil {
		t.Fatal(err)
	}
	if err := complete(parts...); s3Code(err) != "NoSuchUpload" {
		t.Errorf("a second completion: %v", err)
	}
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(obj.Body)
	if !bytes.Equal(got, want) {
		t.Errorf("the object: %d bytes, want the 6000 of the parts in order", len(got))
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("j"), UploadId: other}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("j"), UploadId: other}); s3Code(err) != "NoSuchUpload" {
		t.Errorf("a second abort: %v", err)
	}
	if ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b}); err != nil || len(ups.Uploads) != 0 {
		t.Errorf("uploads after: %+v %v", ups, err)
	}
}
