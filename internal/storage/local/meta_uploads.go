package local

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/storage"
)

// CreateUpload implements storage.Uploads. The session is stored as given,
// Version included.
func (s *MetaStore) CreateUpload(ctx context.Context, u storage.Upload) error {
	return s.update(ctx, "create upload "+u.ID, func(tx *bbolt.Tx) error {
		if err := checkName("upload id", u.ID); err != nil {
			return err
		}
		b := tx.Bucket(bucketUploads)
		if b.Get([]byte(u.ID)) != nil {
			return storage.ErrExists
		}
		return putJSON(b, []byte(u.ID), u)
	})
}

// GetUpload implements storage.Uploads.
func (s *MetaStore) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	var u storage.Upload
	err := s.view(ctx, "get upload "+id, func(tx *bbolt.Tx) error {
		if err := checkName("upload id", id); err != nil {
			return err
		}
		return getJSON(tx.Bucket(bucketUploads), []byte(id), &u)
	})
	return u, err
}

// UpdateUpload implements storage.Uploads. The stored Version becomes
// prev+1, whatever u.Version says, so two writers that read the same
// version can't both win.
func (s *MetaStore) UpdateUpload(ctx context.Context, u storage.Upload, prev int64) error {
	return s.update(ctx, fmt.Sprintf("update upload %s from version %d", u.ID, prev), func(tx *bbolt.Tx) error {
		if err := checkName("upload id", u.ID); err != nil {
			return err
		}
		b := tx.Bucket(bucketUploads)
		var cur storage.Upload
		switch err := getJSON(b, []byte(u.ID), &cur); {
		case errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("%w: the upload is gone", storage.ErrConflict)
		case err != nil:
			return err
		case cur.Version != prev:
			return fmt.Errorf("%w: stored version is %d", storage.ErrConflict, cur.Version)
		}
		u.Version = prev + 1
		return putJSON(b, []byte(u.ID), u)
	})
}

// GetSetting implements storage.Settings.
func (s *MetaStore) GetSetting(ctx context.Context, key string) (storage.Setting, error) {
	var set storage.Setting
	err := s.view(ctx, "get setting "+key, func(tx *bbolt.Tx) error {
		if err := checkName("setting key", key); err != nil {
			return err
		}
		return getJSON(tx.Bucket(bucketSettings), []byte(key), &set)
	})
	return set, err
}

// PutSetting implements storage.Settings.
func (s *MetaStore) PutSetting(ctx context.Context, set storage.Setting, prev int64) error {
	return s.update(ctx, fmt.Sprintf("put setting %s from version %d", set.Key, prev), func(tx *bbolt.Tx) error {
		if err := checkName("setting key", set.Key); err != nil {
			return err
		}
		b := tx.Bucket(bucketSettings)
		var cur storage.Setting
		switch err := getJSON(b, []byte(set.Key), &cur); {
		case errors.Is(err, storage.ErrNotFound):
			if prev != 0 {
				return fmt.Errorf("%w: the setting does not exist", storage.ErrConflict)
			}
		case err != nil:
			return err
		case cur.Version != prev:
			return fmt.Errorf("%w: stored version is %d", storage.ErrConflict, cur.Version)
		}
		set.Version = prev + 1
		return putJSON(b, []byte(set.Key), set)
	})
}

// DeleteSetting implements storage.Settings.
func (s *MetaStore) DeleteSetting(ctx context.Context, key string, prev int64) error {
	return s.update(ctx, fmt.Sprintf("delete setting %s at version %d", key, prev), func(tx *bbolt.Tx) error {
		if err := checkName("setting key", key); err != nil {
			return err
		}
		b := tx.Bucket(bucketSettings)
		var cur storage.Setting
		if err := getJSON(b, []byte(key), &cur); err != nil {
			return err
		}
		if cur.Version != prev {
			return fmt.Errorf("%w: stored version is %d", storage.ErrConflict, cur.Version)
		}
		return b.Delete([]byte(key))
	})
}

// ListSettings implements storage.Settings.
func (s *MetaStore) ListSettings(ctx context.Context, prefix string, p storage.Page) ([]storage.Setting, error) {
	var out []storage.Setting
	err := s.view(ctx, "list settings", func(tx *bbolt.Tx) error {
		var err error
		out, err = listJSON[storage.Setting](tx.Bucket(bucketSettings), []byte(prefix), p)
		return err
	})
	return out, err
}
