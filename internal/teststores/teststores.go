// Package teststores opens each backend's stores for tests that run on
// every backend: the embedded one always, S3 + DynamoDB on the stand-ins
// when they are there or can be started (testenv.HaveAWS: under CI a
// missing one fails).
package teststores

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

// Stores is one backend's pair of adapters.
type Stores struct {
	Blobs storage.BlobStore
	Meta  storage.MetaStore
}

// Backends returns an opener per backend. minPart is the smallest
// multipart part the local store accepts (the S3 stand-in accepts any).
func Backends(t *testing.T, minPart int64) map[string]func(t *testing.T) Stores {
	t.Helper()
	bs := map[string]func(t *testing.T) Stores{"local": func(t *testing.T) Stores { return Local(t, minPart) }}
	if testenv.HaveAWS(t) {
		bs["aws"] = AWS
	}
	return bs
}

// Local opens the embedded stores in a temporary directory.
func Local(t testing.TB, minPart int64) Stores {
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
	return Stores{blobs, meta}
}

// AWS opens S3 + DynamoDB over the stand-ins with a fresh bucket and
// table, deleted with the test.
func AWS(t *testing.T) Stores {
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
	return Stores{st.Blobs, st.Meta}
}
