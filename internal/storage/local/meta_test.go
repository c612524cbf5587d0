package local_test

import (
	"path/filepath"
	"testing"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/internal/storage/storagetest"
)

var _ storage.MetaStore = (*local.MetaStore)(nil)

func TestMetaStore(t *testing.T) {
	storagetest.RunMetaStore(t, func(t *testing.T) storage.MetaStore {
		ms, err := local.OpenMetaStore(filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ms.Close() })
		return ms
	})
}
