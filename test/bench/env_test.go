package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/server"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/awsstore"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// Backend names, also the sub-benchmark names.
const (
	backendAWS   = "aws"
	backendLocal = "local"
)

// env is one backend served through the real HTTP API in an
// httptest.Server, with its counters.
type env struct {
	kind   string
	base   string // server URL
	client *http.Client
	// blobs and meta are the stores, uncounted, for setup and clean-up
	// that bypass the API.
	blobs storage.BlobStore
	meta  storage.MetaStore
	// ports counts store calls and blob bytes on both backends.
	ports *portCounter
	// s3, ddb count AWS requests (aws backend only): one Counter per client,
	// so the S3 body bytes are not mixed with DynamoDB's.
	s3, ddb *awsstore.Counter
	// policies is the registry's index-policy cache, as `skiff serve` wires
	// it: the manifest PUT path reads policies through it.
	policies *policy.Cache
}

// forEachBackend runs fn as the sub-benchmarks "aws" and "local".
func forEachBackend(b *testing.B, fn func(b *testing.B, e *env)) {
	b.Run(backendAWS, func(b *testing.B) { fn(b, newAWSEnv(b)) })
	b.Run(backendLocal, func(b *testing.B) { fn(b, newLocalEnv(b)) })
}

func randomName(prefix string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return prefix + hex.EncodeToString(r[:])
}

// cleanupCtx is for b.Cleanup, when b's own context is already cancelled.
func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// newAWSEnv builds the S3 and DynamoDB clients the way
// internal/backend.openAWS does (default config chain, S3ClientOptions,
// create-only content puts), each with its own Counter, on a fresh bucket
// and table that are removed when b ends.
func newAWSEnv(b testing.TB) *env {
	b.Helper()
	testenv.AWS(b) // the stand-ins named by the environment, or started for this process
	ctx := b.Context()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		b.Fatalf("load AWS configuration: %v", err)
	}
	s3Count, ddbCount := awsstore.NewCounter(), awsstore.NewCounter()
	s3c := s3.NewFromConfig(awsCfg, awsstore.S3ClientOptions, s3.WithAPIOptions(s3Count.Middleware))
	ddb := dynamodb.NewFromConfig(awsCfg, dynamodb.WithAPIOptions(ddbCount.Middleware))

	bucket, table := randomName("skiff-bench-"), randomName("skiff-bench-")
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		b.Fatalf("create bucket %s on %s: %v", bucket, os.Getenv("AWS_ENDPOINT_URL_S3"), err)
	}
	b.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		if err := removeBucket(ctx, s3c, bucket); err != nil {
			b.Errorf("cleanup: %v", err)
		}
	})
	if err := awsstore.CreateTable(ctx, ddb, table); err != nil {
		b.Fatalf("create table on %s: %v", os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), err)
	}
	b.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		if err := awsstore.DeleteTable(ctx, ddb, table); err != nil {
			b.Errorf("cleanup: %v", err)
		}
	})
	stores := backend.Stores{
		Blobs: awsstore.NewBlobStore(s3c, bucket, awsstore.WithIfNoneMatch()),
		Meta:  awsstore.NewMetaStore(ddb, table),
	}
	e := serve(b, backendAWS, stores)
	e.s3, e.ddb = s3Count, ddbCount
	return e
}

// newLocalEnv opens the embedded backend the way `skiff serve` does, in a
// temporary data directory.
func newLocalEnv(b testing.TB) *env {
	b.Helper()
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	stores, err := backend.Open(b.Context(), cfg)
	if err != nil {
		b.Fatalf("open local backend: %v", err)
	}
	b.Cleanup(func() { _ = stores.Close() })
	return serve(b, backendLocal, stores)
}

// serve wraps stores in the port counters and serves them through
// registry.New and httpapi.New with the options `skiff serve` uses.
func serve(b testing.TB, kind string, stores backend.Stores) *env {
	b.Helper()
	if missing := checkCounted(); len(missing) > 0 {
		b.Fatalf("the counting wrappers in test/bench/count_test.go do not count %s: add them", strings.Join(missing, ", "))
	}
	ctx := b.Context()
	ports := newPortCounter()
	blobs, meta := wrapBlobs(stores.Blobs, ports), countingMeta{MetaStore: stores.Meta, c: ports}
	// The same wiring as skiff serve and the Lambda functions.
	built, err := server.New(ctx, config.Default(), backend.Stores{Blobs: blobs, Meta: meta, Exclusive: stores.Exclusive}, httpapi.GroupAll, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatalf("server: %v", err)
	}
	cache := built.PolicyCache
	srv := httptest.NewServer(built.Handler)
	b.Cleanup(srv.Close)
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &env{kind: kind, base: srv.URL, client: client, blobs: stores.Blobs, meta: stores.Meta, ports: ports, policies: cache}
}

// removeBucket deletes bucket with whatever it still holds.
func removeBucket(ctx context.Context, c *s3.Client, bucket string) error {
	objects := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for objects.HasMorePages() {
		page, err := objects.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list bucket %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				return fmt.Errorf("delete %s/%s: %w", bucket, aws.ToString(o.Key), err)
			}
		}
	}
	uploads := s3.NewListMultipartUploadsPaginator(c, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	for uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
			break // gofakes3: a bucket that never had an upload
		}
		if err != nil {
			return fmt.Errorf("list uploads of %s: %w", bucket, err)
		}
		for _, u := range page.Uploads {
			if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
				return fmt.Errorf("abort upload of %s/%s: %w", bucket, aws.ToString(u.Key), err)
			}
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("delete bucket %s: %w", bucket, err)
	}
	return nil
}

// dropBlob deletes the bytes of blob d of repo behind the API's back
// (uncounted), so repeated 1 GiB pushes do not pile up in the stand-in's
// memory or on disk.
func (e *env) dropBlob(ctx context.Context, repo string, d digest.Digest) error {
	bl, err := e.meta.GetBlob(ctx, repo, d)
	if err != nil {
		return err
	}
	return e.blobs.Delete(ctx, bl.Key)
}

// reset zeroes every counter of e: call it right before the measured
// requests.
func (e *env) reset() {
	e.ports.reset()
	if e.s3 != nil {
		e.s3.Reset()
		e.ddb.Reset()
	}
}

// tally accumulates what the measured requests of several iterations cost.
type tally struct {
	iters  int
	ops    map[string]int   // AWS requests ("S3.PutObject") or store operations ("Meta.PutBlob")
	sent   int64            // S3 request body bytes, or bytes the blob store took in
	recv   int64            // S3 response body bytes, or bytes the blob store gave out
	port   map[string]int64 // blob bytes by port method, both backends
	pushed int64            // blob bytes the client pushed
}

// total is every request or store operation counted so far.
func (t *tally) total() int {
	n := 0
	for _, v := range t.ops {
		n += v
	}
	return n
}

func newTally() *tally { return &tally{ops: map[string]int{}, port: map[string]int64{}} }

// add records the counters of e since its last reset as one iteration
// that pushed pushed bytes.
func (t *tally) add(e *env, pushed int64) {
	t.iters++
	t.pushed += pushed
	ops, port := e.ports.snapshot()
	for m, n := range port {
		t.port[m] += n
	}
	if e.s3 != nil {
		ops = e.s3.Snapshot()
		maps.Copy(ops, e.ddb.Snapshot()) // disjoint: "S3." and "DynamoDB." keys
		sent, recv := e.s3.Bytes()
		t.sent += sent
		t.recv += recv
	} else {
		t.sent += e.ports.written()
		t.recv += e.ports.read()
	}
	for op, n := range ops {
		t.ops[op] += n
	}
}

// report attaches the tally to b as per-operation metrics:
//
//	aws:   aws-req/op, aws:<Service.Operation>/op
//	local: store-ops/op, store:<Port.Method>/op
//
// and, when bytes were pushed, the write amplification and its parts:
//
//	aws:   s3-bytes/pushed-byte, s3-bytes-sent/op, s3-bytes-recv/op
//	local: store-bytes/pushed-byte, store-bytes-written/op, store-bytes-read/op
//	both:  pushed-bytes/op, port-bytes:Blob.<Put|UploadPart|Open>/op
//
// A variant ("cold-") prefixes every unit, for a second measurement of the
// same operation in another state.
func (t *tally) report(b *testing.B, kind, variant string) {
	if t.iters == 0 {
		b.Fatal("no iteration was measured")
	}
	n := float64(t.iters)
	reqUnit, opPrefix, bytesPrefix := "store-ops/op", "store:", "store-bytes"
	sentUnit, recvUnit := "-written/op", "-read/op"
	if kind == backendAWS {
		reqUnit, opPrefix, bytesPrefix = "aws-req/op", "aws:", "s3-bytes"
		sentUnit, recvUnit = "-sent/op", "-recv/op"
	}
	reqUnit, opPrefix, bytesPrefix = variant+reqUnit, variant+opPrefix, variant+bytesPrefix
	total := 0
	for _, op := range slices.Sorted(maps.Keys(t.ops)) {
		total += t.ops[op]
		b.ReportMetric(float64(t.ops[op])/n, opPrefix+op+"/op")
	}
	b.ReportMetric(float64(total)/n, reqUnit)
	if t.pushed > 0 {
		if variant != "" {
			b.Fatal("byte metrics of a variant are not supported")
		}
		b.ReportMetric(float64(t.pushed)/n, "pushed-bytes/op")
		b.ReportMetric(float64(t.sent)/n, bytesPrefix+sentUnit)
		b.ReportMetric(float64(t.recv)/n, bytesPrefix+recvUnit)
		b.ReportMetric(float64(t.sent+t.recv)/float64(t.pushed), bytesPrefix+"/pushed-byte")
		for m, v := range t.port {
			if v > 0 {
				b.ReportMetric(float64(v)/n, "port-bytes:"+m+"/op")
			}
		}
		b.SetBytes(t.pushed / int64(t.iters))
	}
}
