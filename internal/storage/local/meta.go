package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/storage"
)

// Buckets of the metadata file (see doc.go).
var (
	bucketMeta      = []byte("meta")
	bucketRepos     = []byte("repositories")
	bucketBlobs     = []byte("blobs")
	bucketManifests = []byte("manifests")
	bucketTags      = []byte("tags")
	bucketReferrers = []byte("referrers")
	bucketAbsent    = []byte("absent")
	bucketUploads   = []byte("uploads")
	bucketSettings  = []byte("settings")
	bucketCounters  = []byte("counters")
	bucketContents  = []byte("contents")
	bucketLinked    = []byte("linked")
)

const (
	// schemaVersion is stored under meta/schema; a file written by another
	// layout is refused rather than misread.
	schemaVersion = "1"
	// sep joins the parts of a key. Repository names, tags and digests
	// can't contain it, so the items of one repository share a prefix no
	// other repository's items have, and sort by the last part.
	sep = "\x00"
	// lockTimeout bounds the wait for the file lock: a second process on
	// the same file fails at start instead of hanging.
	lockTimeout = 5 * time.Second
)

// MetaStore is a storage.MetaStore in a bbolt file. Every write is one
// bbolt transaction, atomic and fsynced before it returns.
type MetaStore struct {
	db *bbolt.DB
}

// OpenMetaStore opens, or creates, the metadata file at path. Close it when
// done; only one process can have it open.
func OpenMetaStore(path string) (*MetaStore, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("open meta store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketRepos, bucketBlobs, bucketManifests, bucketTags, bucketReferrers, bucketAbsent, bucketUploads, bucketSettings, bucketCounters, bucketContents, bucketLinked} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get([]byte("schema")); {
		case v == nil:
			return meta.Put([]byte("schema"), []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %q, want %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open meta store %s: %w", path, err)
	}
	return &MetaStore{db: db}, nil
}

// Close releases the file.
func (s *MetaStore) Close() error {
	return s.db.Close()
}

// view runs fn in a read transaction, unless ctx is done. Errors are
// prefixed with op.
func (s *MetaStore) view(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// update runs fn in a write transaction, unless ctx is done.
func (s *MetaStore) update(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	// The context is checked again once the transaction holds the write
	// lock: a write whose deadline passed while it waited does not land
	// (the registry's link window relies on it).
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, full(err))
	}
	return nil
}

// checkName rejects what can't be a key part: empty strings and ones
// containing sep, which would break repository isolation.
func checkName(what, name string) error {
	if name == "" || strings.Contains(name, sep) {
		return fmt.Errorf("invalid %s %q", what, name)
	}
	return nil
}

// key joins key parts with sep.
func key(parts ...string) []byte {
	return []byte(strings.Join(parts, sep))
}

// getJSON decodes the value at k into v; ErrNotFound if there is none.
func getJSON(b *bbolt.Bucket, k []byte, v any) error {
	data := b.Get(k)
	if data == nil {
		return storage.ErrNotFound
	}
	return json.Unmarshal(data, v)
}

// putJSON stores v at k.
func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// deleteExisting deletes k; ErrNotFound if it is absent.
func deleteExisting(b *bbolt.Bucket, k []byte) error {
	if b.Get(k) == nil {
		return storage.ErrNotFound
	}
	return b.Delete(k)
}

// list visits, in key order, the items of b under prefix whose rest of
// the key sorts strictly after p.After, at most p.Limit of them. It seeks
// straight to the first one: a page costs its own size, not the bucket's.
func list(b *bbolt.Bucket, prefix []byte, p storage.Page, fn func(rest string, v []byte) error) error {
	start := append(bytes.Clone(prefix), p.After...)
	c := b.Cursor()
	k, v := c.Seek(start)
	if p.After != "" && bytes.Equal(k, start) {
		k, v = c.Next()
	}
	for n := 0; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if p.Limit > 0 && n == p.Limit {
			break
		}
		if err := fn(string(k[len(prefix):]), v); err != nil {
			return err
		}
		n++
	}
	return nil
}

// listJSON decodes the values list visits.
func listJSON[T any](b *bbolt.Bucket, prefix []byte, p storage.Page) ([]T, error) {
	var out []T
	err := list(b, prefix, p, func(_ string, v []byte) error {
		var item T
		if err := json.Unmarshal(v, &item); err != nil {
			return err
		}
		out = append(out, item)
		return nil
	})
	return out, err
}
