package local

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/storage"
)

// checkRepoDigests validates a repository name and digests before they
// become key parts.
func checkRepoDigests(repo string, ds ...digest.Digest) error {
	if err := checkName("repository name", repo); err != nil {
		return err
	}
	for _, d := range ds {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("invalid digest %q: %w", d, err)
		}
	}
	return nil
}

// GetBlob implements storage.Blobs.
func (s *MetaStore) GetBlob(ctx context.Context, repo string, d digest.Digest) (storage.Blob, error) {
	var b storage.Blob
	err := s.view(ctx, fmt.Sprintf("get blob %s in %s", d, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, d); err != nil {
			return err
		}
		return getJSON(tx.Bucket(bucketBlobs), key(repo, d.String()), &b)
	})
	return b, err
}

// GetBlobs implements storage.Blobs.
func (s *MetaStore) GetBlobs(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]storage.Blob, error) {
	out := make(map[digest.Digest]storage.Blob, len(ds))
	err := s.view(ctx, fmt.Sprintf("get blobs in %s", repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, ds...); err != nil {
			return err
		}
		return getMany(tx.Bucket(bucketBlobs), repo, ds, out)
	})
	return out, err
}

// getMany decodes the items of ds that exist under repo into out.
func getMany[T any](b *bbolt.Bucket, repo string, ds []digest.Digest, out map[digest.Digest]T) error {
	for _, d := range ds {
		var item T
		switch err := getJSON(b, key(repo, d.String()), &item); {
		case err == nil:
			out[d] = item
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	return nil
}

// PutBlob implements storage.Blobs.
func (s *MetaStore) PutBlob(ctx context.Context, repo string, b storage.Blob) error {
	return s.update(ctx, fmt.Sprintf("put blob %s in %s", b.Digest, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, b.Digest); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketBlobs), key(repo, b.Digest.String()), b)
	})
}

// DeleteBlob implements storage.Blobs.
func (s *MetaStore) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	return s.update(ctx, fmt.Sprintf("delete blob %s in %s", d, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, d); err != nil {
			return err
		}
		return deleteExisting(tx.Bucket(bucketBlobs), key(repo, d.String()))
	})
}

// GetManifest implements storage.Manifests.
func (s *MetaStore) GetManifest(ctx context.Context, repo string, d digest.Digest) (storage.Manifest, error) {
	var m storage.Manifest
	err := s.view(ctx, fmt.Sprintf("get manifest %s in %s", d, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, d); err != nil {
			return err
		}
		return getJSON(tx.Bucket(bucketManifests), key(repo, d.String()), &m)
	})
	return m, err
}

// GetManifests implements storage.Manifests.
func (s *MetaStore) GetManifests(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]storage.Manifest, error) {
	out := make(map[digest.Digest]storage.Manifest, len(ds))
	err := s.view(ctx, fmt.Sprintf("get manifests in %s", repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, ds...); err != nil {
			return err
		}
		return getMany(tx.Bucket(bucketManifests), repo, ds, out)
	})
	return out, err
}

// PutManifest implements storage.Manifests.
func (s *MetaStore) PutManifest(ctx context.Context, repo string, m storage.Manifest) error {
	return s.update(ctx, fmt.Sprintf("put manifest %s in %s", m.Digest, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, m.Digest); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketManifests), key(repo, m.Digest.String()), m)
	})
}

// DeleteManifest implements storage.Manifests.
func (s *MetaStore) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return s.update(ctx, fmt.Sprintf("delete manifest %s in %s", d, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, d); err != nil {
			return err
		}
		return deleteExisting(tx.Bucket(bucketManifests), key(repo, d.String()))
	})
}

// checkTag validates a repository and tag name before they become key
// parts.
func checkTag(repo, name string) error {
	if err := checkName("repository name", repo); err != nil {
		return err
	}
	return checkName("tag", name)
}

// GetTag implements storage.Tags.
func (s *MetaStore) GetTag(ctx context.Context, repo, name string) (storage.Tag, error) {
	var t storage.Tag
	err := s.view(ctx, fmt.Sprintf("get tag %s:%s", repo, name), func(tx *bbolt.Tx) error {
		if err := checkTag(repo, name); err != nil {
			return err
		}
		return getJSON(tx.Bucket(bucketTags), key(repo, name), &t)
	})
	return t, err
}

// PutTag implements storage.Tags.
func (s *MetaStore) PutTag(ctx context.Context, repo string, t storage.Tag) error {
	return s.update(ctx, fmt.Sprintf("put tag %s:%s", repo, t.Name), func(tx *bbolt.Tx) error {
		if err := checkTag(repo, t.Name); err != nil {
			return err
		}
		if err := t.Digest.Validate(); err != nil {
			return fmt.Errorf("invalid digest %q: %w", t.Digest, err)
		}
		return putJSON(tx.Bucket(bucketTags), key(repo, t.Name), t)
	})
}

// DeleteTag implements storage.Tags.
func (s *MetaStore) DeleteTag(ctx context.Context, repo, name string) error {
	return s.update(ctx, fmt.Sprintf("delete tag %s:%s", repo, name), func(tx *bbolt.Tx) error {
		if err := checkTag(repo, name); err != nil {
			return err
		}
		return deleteExisting(tx.Bucket(bucketTags), key(repo, name))
	})
}

// ListTags implements storage.Tags.
func (s *MetaStore) ListTags(ctx context.Context, repo string, p storage.Page) ([]storage.Tag, error) {
	var tags []storage.Tag
	err := s.view(ctx, fmt.Sprintf("list tags of %s", repo), func(tx *bbolt.Tx) error {
		if err := checkName("repository name", repo); err != nil {
			return err
		}
		var err error
		tags, err = listJSON[storage.Tag](tx.Bucket(bucketTags), key(repo, ""), p)
		return err
	})
	return tags, err
}

// PutReferrer implements storage.Referrers.
func (s *MetaStore) PutReferrer(ctx context.Context, repo string, subject digest.Digest, r storage.Referrer) error {
	return s.update(ctx, fmt.Sprintf("put referrer %s of %s in %s", r.Digest, subject, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, subject, r.Digest); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketReferrers), key(repo, subject.String(), r.Digest.String()), r)
	})
}

// DeleteReferrer implements storage.Referrers.
func (s *MetaStore) DeleteReferrer(ctx context.Context, repo string, subject, r digest.Digest) error {
	return s.update(ctx, fmt.Sprintf("delete referrer %s of %s in %s", r, subject, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, subject, r); err != nil {
			return err
		}
		return tx.Bucket(bucketReferrers).Delete(key(repo, subject.String(), r.String()))
	})
}

// ListReferrers implements storage.Referrers.
func (s *MetaStore) ListReferrers(ctx context.Context, repo string, subject digest.Digest, p storage.Page) ([]storage.Referrer, error) {
	var refs []storage.Referrer
	err := s.view(ctx, fmt.Sprintf("list referrers of %s in %s", subject, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, subject); err != nil {
			return err
		}
		var err error
		refs, err = listJSON[storage.Referrer](tx.Bucket(bucketReferrers), key(repo, subject.String(), ""), p)
		return err
	})
	return refs, err
}

// PutRepository implements storage.Repositories. The core calls it on
// every push, so an existing repository costs a read, not a write.
func (s *MetaStore) PutRepository(ctx context.Context, repo string) error {
	return s.putRepo(ctx, bucketRepos, repo)
}

// PutLinkedRepository implements storage.Repositories.
func (s *MetaStore) PutLinkedRepository(ctx context.Context, repo string) error {
	return s.putRepo(ctx, bucketLinked, repo)
}

func (s *MetaStore) putRepo(ctx context.Context, bucket []byte, repo string) error {
	if err := checkName("repository name", repo); err != nil {
		return fmt.Errorf("put repository %s: %w", repo, err)
	}
	var exists bool
	err := s.view(ctx, "put repository "+repo, func(tx *bbolt.Tx) error {
		exists = tx.Bucket(bucket).Get([]byte(repo)) != nil
		return nil
	})
	if err != nil || exists {
		return err
	}
	return s.update(ctx, "put repository "+repo, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(repo), []byte("{}"))
	})
}

// HasRepository implements storage.Repositories.
func (s *MetaStore) HasRepository(ctx context.Context, repo string) (bool, error) {
	var exists bool
	err := s.view(ctx, "has repository "+repo, func(tx *bbolt.Tx) error {
		exists = tx.Bucket(bucketRepos).Get([]byte(repo)) != nil
		return nil
	})
	return exists, err
}

// ListRepositories implements storage.Repositories.
func (s *MetaStore) ListRepositories(ctx context.Context, p storage.Page) ([]string, error) {
	return s.listRepos(ctx, bucketRepos, p)
}

// ListLinkedRepositories implements storage.Repositories.
func (s *MetaStore) ListLinkedRepositories(ctx context.Context, p storage.Page) ([]string, error) {
	return s.listRepos(ctx, bucketLinked, p)
}

func (s *MetaStore) listRepos(ctx context.Context, bucket []byte, p storage.Page) ([]string, error) {
	var repos []string
	err := s.view(ctx, "list repositories", func(tx *bbolt.Tx) error {
		return list(tx.Bucket(bucket), nil, p, func(name string, _ []byte) error {
			repos = append(repos, name)
			return nil
		})
	})
	return repos, err
}
