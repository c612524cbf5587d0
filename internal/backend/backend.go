// Package backend opens the storage adapters a Config names: the embedded
// local store, or S3 + DynamoDB. The CLI and the Lambda mains share it, so
// both wire the adapters the same way.
package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/skiff-registry/skiff/internal/awsconf"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/awsstore"
	"github.com/skiff-registry/skiff/internal/storage/local"
)

// Stores are the opened adapters; Close releases them.
type Stores struct {
	Blobs storage.BlobStore
	Meta  storage.MetaStore
	Close func() error
	// Exclusive is true when this process alone uses the stores (the local
	// backend locks its database file).
	Exclusive bool
	// Janitor, when set, removes what abandoned uploads left behind as of
	// now (the local backend; AWS expires it by lifecycle rules and TTL).
	Janitor func(ctx context.Context, now time.Time) (Expired, error)
}

// Open opens the adapters cfg names. In AWS mode the SDK reads region,
// credentials and endpoints (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB)
// its standard way.
func Open(ctx context.Context, cfg config.Config) (Stores, error) {
	switch cfg.Backend {
	case config.BackendLocal:
		return openLocal(cfg)
	case config.BackendAWS:
		return openAWS(ctx, cfg)
	}
	return Stores{}, fmt.Errorf("unknown backend %q", cfg.Backend)
}

func openLocal(cfg config.Config) (Stores, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return Stores{}, fmt.Errorf("create data directory: %w", err)
	}
	blobs, err := local.NewBlobStore(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return Stores{}, fmt.Errorf("open blob store: %w", err)
	}
	meta, err := local.OpenMetaStore(filepath.Join(cfg.DataDir, "meta.db"))
	if err != nil {
		return Stores{}, fmt.Errorf("open metadata store: %w", err)
	}
	return Stores{Blobs: blobs, Meta: meta, Close: meta.Close, Exclusive: true, Janitor: localJanitor(blobs, meta)}, nil
}

func openAWS(ctx context.Context, cfg config.Config) (Stores, error) {
	awsCfg, err := awsconf.Load(ctx)
	if err != nil {
		return Stores{}, err
	}
	s3c := s3.NewFromConfig(awsCfg, awsstore.S3ClientOptions)
	ddb := dynamodb.NewFromConfig(awsCfg)
	if cfg.CreateResources {
		if err := createBucket(ctx, s3c, cfg.Bucket, awsCfg.Region); err != nil {
			return Stores{}, err
		}
		if err := awsstore.CreateTable(ctx, ddb, cfg.Table); err != nil {
			return Stores{}, fmt.Errorf("create table %s: %w", cfg.Table, err)
		}
	}
	// Every key the core writes with a digest is derived from that digest,
	// so an existing object already holds the verified bytes: If-None-Match
	// saves rewriting it.
	blobs := awsstore.NewBlobStore(s3c, cfg.Bucket, awsstore.WithIfNoneMatch())
	meta := awsstore.NewMetaStore(ddb, cfg.Table)
	return Stores{Blobs: blobs, Meta: meta, Close: func() error { return nil }}, nil
}

// createBucket creates bucket unless it exists already.
func createBucket(ctx context.Context, c *s3.Client, bucket, region string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region != "" && region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	_, err := c.CreateBucket(ctx, in)
	var owned *s3types.BucketAlreadyOwnedByYou
	var exists *s3types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}
