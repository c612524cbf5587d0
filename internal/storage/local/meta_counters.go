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

// Reserve implements storage.Counters: one bbolt transaction, so the
// check and the add are atomic (bbolt runs one writer at a time).
func (s *MetaStore) Reserve(ctx context.Context, key string, now time.Time, window time.Duration, limit int64) (storage.Count, bool, error) {
	if key == "" {
		return storage.Count{}, false, fmt.Errorf("reserve: empty key")
	}
	var c counterValue
	counted := false
	err := s.update(ctx, "reserve "+key, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		if b.Stats().KeyN > counterSweepAt {
			if err := sweepCounters(b, now); err != nil {
				return err
			}
		}
		c = counterValue{}
		if err := getCounter(b, key, &c); err != nil {
			return err
		}
		if !now.Before(c.Ends) {
			c = counterValue{Ends: now.Add(window)}
		}
		if limit > 0 && c.N >= limit {
			return nil
		}
		c.N++
		counted = true
		return putCounter(b, key, c)
	})
	return storage.Count{N: c.N, Ends: c.Ends}, counted && err == nil, err
}

// Release implements storage.Counters.
func (s *MetaStore) Release(ctx context.Context, key string, ends time.Time, limit int64) error {
	return s.update(ctx, "release "+key, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		var c counterValue
		if err := getCounter(b, key, &c); err != nil {
			return err
		}
		if c.N <= 0 || c.Ends.UnixMilli() != ends.UnixMilli() || limit > 0 && c.N >= limit {
			return nil // that window is over, was never opened, or is used up
		}
		c.N--
		return putCounter(b, key, c)
	})
}

func getCounter(b *bbolt.Bucket, key string, c *counterValue) error {
	if v := b.Get([]byte(key)); v != nil {
		if err := json.Unmarshal(v, c); err != nil {
			return fmt.Errorf("decode counter: %w", err)
		}
	}
	return nil
}

func putCounter(b *bbolt.Bucket, key string, c counterValue) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), v)
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
