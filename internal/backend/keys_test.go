package backend

import (
	"context"
	"sync"
	"testing"

	"github.com/skiff-registry/skiff/internal/config"
)

// TestLoadTokenKeyConcurrent: processes starting together on a fresh data
// directory agree on one key.
func TestLoadTokenKeyConcurrent(t *testing.T) {
	t.Parallel()
	cfg := config.Config{Backend: config.BackendLocal, DataDir: t.TempDir()}
	keys := make([]string, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadTokenKey(context.Background(), cfg)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = string(k)
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if k != keys[0] || len(k) < 32 {
			t.Fatalf("keys differ or are short: %q", keys)
		}
	}
}
