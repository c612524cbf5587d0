package registry_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/skiff-registry/skiff/internal/backend"
	skconfig "github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/awsstore"
	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// stores is one backend's pair of adapters.
type stores struct {
	blobs storage.BlobStore
	meta  storage.MetaStore
}

// backends lists the backends a test runs on: the embedded one always,
// S3 + DynamoDB on the stand-ins when they are there or can be started
// (testenv.HaveAWS: without Node.js, no dynalite; under CI that fails).
func backends(t *testing.T) map[string]func(t *testing.T) stores {
	t.Helper()
	bs := map[string]func(t *testing.T) stores{"local": func(t *testing.T) stores { return localStores(t) }}
	if testenv.HaveAWS(t) {
		bs["aws"] = awsStores
	}
	return bs
}

func localStores(t testing.TB) stores {
	t.Helper()
	dir := t.TempDir()
	blobs, err := local.NewBlobStore(dir+"/blobs", local.WithMinPartSize(minPart))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := local.OpenMetaStore(dir + "/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return stores{blobs, meta}
}

// awsStores opens S3 + DynamoDB over the stand-ins with a fresh bucket
// and table. The stand-in accepts small parts, like the local store set
// up above (real S3 would refuse parts under 5 MiB).
func awsStores(t *testing.T) stores {
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "skiff-test-" + hex.EncodeToString(b[:])
	st, err := backend.Open(ctx, skconfig.Config{Backend: skconfig.BackendAWS, Bucket: name, Table: name, CreateResources: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err == nil {
			_ = awsstore.DeleteTable(ctx, dynamodb.NewFromConfig(cfg), name)
		}
	})
	return stores{st.Blobs, st.Meta}
}
