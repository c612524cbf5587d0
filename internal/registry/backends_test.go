package registry_test

import (
	"testing"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/teststores"
)

// stores is one backend's pair of adapters.
type stores struct {
	blobs storage.BlobStore
	meta  storage.MetaStore
}

// backends lists the backends a test runs on (teststores.Backends).
func backends(t *testing.T) map[string]func(t *testing.T) stores {
	t.Helper()
	out := map[string]func(t *testing.T) stores{}
	for name, open := range teststores.Backends(t, minPart) {
		out[name] = func(t *testing.T) stores { s := open(t); return stores{s.Blobs, s.Meta} }
	}
	return out
}

func localStores(t testing.TB) stores {
	t.Helper()
	s := teststores.Local(t, minPart)
	return stores{s.Blobs, s.Meta}
}
