package local

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/storage"
)

// counterSweepAt is the number of counters past which CountEvent also
// drops the ones whose window ended: a flood of distinct keys (source
// addresses, user names) can't grow the file without bound.
const counterSweepAt = 10_000

type counterValue struct {
	N    int64     `json:"n"`
	Ends time.Time `json:"ends"`
}

// CountEvent implements storage.Counters: one bbolt transaction.
func (s *MetaStore) CountEvent(ctx context.Context, key string, now time.Time, window time.Duration) (storage.Count, error) {
	if key == "" {
		return storage.Count{}, fmt.Errorf("count event: empty key")
	}
	var c counterValue
	err := s.update(ctx, "count event "+key, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		if b.Stats().KeyN > counterSweepAt {
			if err := sweepCounters(b, now); err != nil {
				return err
			}
		}
		if v := b.Get([]byte(key)); v != nil {
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode counter: %w", err)
			}
		}
		if !now.Before(c.Ends) {
			c = counterValue{Ends: now.Add(window)}
		}
		c.N++
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), v)
	})
	return storage.Count{N: c.N, Ends: c.Ends}, err
}

// GetCounts implements storage.Counters.
func (s *MetaStore) GetCounts(ctx context.Context, keys []string, now time.Time) (map[string]storage.Count, error) {
	out := map[string]storage.Count{}
	err := s.view(ctx, "get counts", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		for _, k := range keys {
			v := b.Get([]byte(k))
			if v == nil {
				continue
			}
			var c counterValue
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode counter %s: %w", k, err)
			}
			if now.Before(c.Ends) {
				out[k] = storage.Count{N: c.N, Ends: c.Ends}
			}
		}
		return nil
	})
	return out, err
}

func sweepCounters(b *bbolt.Bucket, now time.Time) error {
	var ended [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var c counterValue
		if json.Unmarshal(v, &c) != nil || !now.Before(c.Ends) {
			ended = append(ended, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range ended {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
