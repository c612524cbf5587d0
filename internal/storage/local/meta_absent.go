package local

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/storage"
)

// PutAbsent implements storage.Absents.
func (s *MetaStore) PutAbsent(ctx context.Context, repo string, child digest.Digest, a storage.Absent) error {
	return s.update(ctx, fmt.Sprintf("put absent %s of %s in %s", child, a.Index, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, child, a.Index); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketAbsent), key(repo, child.String(), a.Index.String()), a)
	})
}

// ListAbsent implements storage.Absents.
func (s *MetaStore) ListAbsent(ctx context.Context, repo string, child digest.Digest, p storage.Page) ([]storage.Absent, error) {
	var out []storage.Absent
	err := s.view(ctx, fmt.Sprintf("list absent %s in %s", child, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, child); err != nil {
			return err
		}
		var err error
		out, err = listJSON[storage.Absent](tx.Bucket(bucketAbsent), key(repo, child.String(), ""), p)
		return err
	})
	return out, err
}
