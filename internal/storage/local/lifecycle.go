package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/storage"
)

// The embedded store's counterpart of the bucket's lifecycle rules and the
// table's TTL in AWS: without them, abandoned uploads would keep their
// parts, tail segments and session items on disk for ever.

// AbortMultipartsBefore aborts the multipart uploads created before t, as
// S3's AbortIncompleteMultipartUpload rule does, and returns how many.
func (s *BlobStore) AbortMultipartsBefore(ctx context.Context, t time.Time) (int, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, multipartDir))
	if err != nil {
		return 0, fmt.Errorf("abort multipart uploads: %w", err)
	}
	n := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("abort multipart uploads: %w", err)
		}
		dir := filepath.Join(s.root, multipartDir, e.Name())
		// The key file is written once, at creation: its time is the
		// upload's initiation. Without one, the directory's.
		fi, err := os.Stat(filepath.Join(dir, keyFile))
		if errors.Is(err, fs.ErrNotExist) {
			fi, err = os.Stat(dir)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // completed or aborted meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("abort multipart uploads: %w", err)
		}
		if !fi.ModTime().Before(t) {
			continue
		}
		if err := s.discard(dir); err != nil {
			return n, fmt.Errorf("abort multipart upload %s: %w", e.Name(), err)
		}
		n++
	}
	return n, nil
}

// DeleteObjectsBefore deletes the objects under prefix (a key prefix
// ending in "/") last written before t, as S3's Expiration rule does, and
// returns how many.
func (s *BlobStore) DeleteObjectsBefore(ctx context.Context, prefix string, t time.Time) (int, error) {
	if !strings.HasSuffix(prefix, "/") || checkKey(strings.TrimSuffix(prefix, "/")) != nil {
		return 0, fmt.Errorf("delete objects: prefix %q must be a key followed by /", prefix)
	}
	objs, err := s.walk(prefix)
	if err != nil {
		return 0, fmt.Errorf("delete objects under %s: %w", prefix, err)
	}
	var keys []string
	for _, o := range objs {
		if o.Modified.Before(t) {
			keys = append(keys, o.Key)
		}
	}
	for i, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}

// DeleteUploadsExpiredBefore deletes the upload sessions whose Expires is
// before t, as DynamoDB's TTL does on expiresAt, and returns how many. A
// session without an expiry is kept.
func (s *MetaStore) DeleteUploadsExpiredBefore(ctx context.Context, t time.Time) (int, error) {
	var expired [][]byte
	err := s.view(ctx, "list expired uploads", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var u storage.Upload
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("decode upload %s: %w", k, err)
			}
			if !u.Expires.IsZero() && u.Expires.Before(t) {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil || len(expired) == 0 {
		return 0, err
	}
	err = s.update(ctx, "delete expired uploads", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketUploads)
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(expired), nil
}

// walk returns the objects whose key starts with prefix (with their file's
// modification time, and no size), in no particular order.
func (s *BlobStore) walk(prefix string) ([]storage.Object, error) {
	root := filepath.Join(s.root, objectsDir)
	top := root
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		top = filepath.Join(root, filepath.FromSlash(prefix[:i]))
	}
	var out []storage.Object
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), objectSuffix) || strings.HasPrefix(d.Name(), "@") {
			return nil // directories and temporary files
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		k := strings.TrimSuffix(filepath.ToSlash(rel), objectSuffix)
		if !strings.HasPrefix(k, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, storage.Object{Key: k, Modified: fi.ModTime()})
		return nil
	})
	return out, err
}

// List implements storage.BlobStore. It walks every key under prefix for
// each page: the embedded store serves one machine's data, and a listing
// only serves a collection.
func (s *BlobStore) List(ctx context.Context, prefix string, p storage.Page) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	objs, err := s.walk(prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	slices.SortFunc(objs, func(a, b storage.Object) int { return strings.Compare(a.Key, b.Key) })
	i, _ := slices.BinarySearchFunc(objs, p.After, func(o storage.Object, k string) int { return strings.Compare(o.Key, k) })
	if i < len(objs) && p.After != "" && objs[i].Key == p.After {
		i++
	}
	objs = objs[i:]
	if p.Limit > 0 && len(objs) > p.Limit {
		objs = objs[:p.Limit]
	}
	out := objs[:0]
	for _, o := range objs {
		f, _, size, err := readObject(s.objectPath(o.Key))
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since the walk
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		if f != nil {
			f.Close()
		}
		o.Size = size
		out = append(out, o)
	}
	return out, nil
}
