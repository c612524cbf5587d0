package local_test

import (
	"testing"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/internal/storage/storagetest"
)

var _ storage.BlobStore = (*local.BlobStore)(nil)

func TestBlobStore(t *testing.T) {
	storagetest.RunBlobStore(t, func(t *testing.T) storage.BlobStore {
		bs, err := local.NewBlobStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return bs
	})
}
