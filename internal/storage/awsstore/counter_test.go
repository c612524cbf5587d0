package awsstore

import (
	"bytes"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// counterTestClient returns an S3 client with c added, talking to an
// in-process gofakes3, so the counter is tested in every `go test` run.
func counterTestClient(t *testing.T, c *Counter) *s3.Client {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		APIOptions:   []func(*middleware.Stack) error{c.Middleware},
	}, S3ClientOptions)
}

func TestCounter(t *testing.T) {
	c := NewCounter()
	client := counterTestClient(t, c)
	ctx := t.Context()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("counted")}); err != nil {
		t.Fatal(err)
	}
	bs := NewBlobStore(client, "counted")

	const workers, each = 8, 5
	data := bytes.Repeat([]byte("x"), 1000)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := string(rune('a'+w)) + "/" + string(rune('0'+i))
				if err := bs.Put(ctx, key, int64(len(data)), "", bytes.NewReader(data)); err != nil {
					t.Errorf("put %s: %v", key, err)
					return
				}
				rc, err := bs.Open(ctx, key, 10, 100)
				if err != nil {
					t.Errorf("open %s: %v", key, err)
					return
				}
				io.Copy(io.Discard, rc)
				rc.Close()
				_ = c.Snapshot() // reading while others count
			}
		})
	}
	wg.Wait()

	want := map[string]int{"S3.CreateBucket": 1, "S3.PutObject": workers * each, "S3.GetObject": workers * each}
	if diff := cmp.Diff(c.Snapshot(), want); diff != "" {
		t.Errorf("Snapshot (-got +want):\n%s", diff)
	}
	sent, received := c.Bytes()
	if want := int64(workers * each * len(data)); sent != want {
		t.Errorf("bytes sent: got %d, want %d", sent, want)
	}
	// Ranged reads: 100 bytes each, plus CreateBucket's empty answer.
	if want := int64(workers * each * 100); received != want {
		t.Errorf("bytes received: got %d, want %d", received, want)
	}

	// A snapshot is a copy.
	snap := c.Snapshot()
	snap["S3.PutObject"] = -1
	if c.Snapshot()["S3.PutObject"] != workers*each {
		t.Error("changing a snapshot changed the counter")
	}

	// Presigning sends nothing and counts nothing.
	c.Reset()
	if _, err := bs.PresignGet(ctx, "a/0", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := c.Snapshot(); len(got) != 0 {
		t.Errorf("after presign: %v, want no requests", got)
	}
	if s, r := c.Bytes(); s != 0 || r != 0 {
		t.Errorf("after Reset and presign: %d sent, %d received", s, r)
	}
}
