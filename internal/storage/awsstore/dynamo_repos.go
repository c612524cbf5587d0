package awsstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// This file holds the repository-scoped methods: blobs, manifests, tags,
// referrers and the catalog.

// GetBlob returns the link of d in repo: one GetItem.
func (s *MetaStore) GetBlob(ctx context.Context, repo string, d digest.Digest) (storage.Blob, error) {
	var it blobItem
	ok, err := s.getItem(ctx, repoPK(repo), skBlob+string(d), &it)
	switch {
	case err != nil:
		return storage.Blob{}, fmt.Errorf("get blob %s@%s: %w", repo, d, err)
	case !ok:
		return storage.Blob{}, fmt.Errorf("get blob %s@%s: %w", repo, d, storage.ErrNotFound)
	}
	return it.blob(), nil
}

// GetBlobs returns the links of ds in repo: one BatchGetItem per 100
// distinct digests (plus retries of unprocessed keys).
func (s *MetaStore) GetBlobs(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]storage.Blob, error) {
	found := make(map[digest.Digest]storage.Blob, len(ds))
	err := s.batchGet(ctx, repoPK(repo), skBlob, ds, func(av map[string]types.AttributeValue) error {
		var it blobItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return err
		}
		b := it.blob()
		found[b.Digest] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get %d blobs of %s: %w", len(ds), repo, err)
	}
	return found, nil
}

// PutBlob links b into repo: one unconditional PutItem.
func (s *MetaStore) PutBlob(ctx context.Context, repo string, b storage.Blob) error {
	if err := s.putItem(ctx, newBlobItem(repo, b), writeCond{}); err != nil {
		return fmt.Errorf("put blob %s@%s: %w", repo, b.Digest, err)
	}
	return nil
}

// DeleteBlob unlinks d from repo: one DeleteItem conditioned on the item
// existing, so a missing link is ErrNotFound without a read first.
func (s *MetaStore) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	return s.deleteExisting(ctx, "blob", repo, skBlob+string(d), string(d))
}

// deleteExisting deletes (R#repo, sk), failing with ErrNotFound if absent.
func (s *MetaStore) deleteExisting(ctx context.Context, what, repo, sk, name string) error {
	err := s.deleteItem(ctx, repoPK(repo), sk, condExists)
	switch {
	case conditionFailed(err):
		return fmt.Errorf("delete %s %s@%s: %w", what, repo, name, storage.ErrNotFound)
	case err != nil:
		return fmt.Errorf("delete %s %s@%s: %w", what, repo, name, err)
	}
	return nil
}

// GetManifest returns manifest d of repo: one GetItem.
func (s *MetaStore) GetManifest(ctx context.Context, repo string, d digest.Digest) (storage.Manifest, error) {
	var it manifestItem
	ok, err := s.getItem(ctx, repoPK(repo), skManifest+string(d), &it)
	switch {
	case err != nil:
		return storage.Manifest{}, fmt.Errorf("get manifest %s@%s: %w", repo, d, err)
	case !ok:
		return storage.Manifest{}, fmt.Errorf("get manifest %s@%s: %w", repo, d, storage.ErrNotFound)
	}
	m, err := it.manifest()
	if err != nil {
		return storage.Manifest{}, fmt.Errorf("get manifest %s@%s: %w", repo, d, err)
	}
	return m, nil
}

// GetManifests returns those of ds that exist in repo: one BatchGetItem per
// 100 distinct digests (plus retries of unprocessed keys).
func (s *MetaStore) GetManifests(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]storage.Manifest, error) {
	found := make(map[digest.Digest]storage.Manifest, len(ds))
	err := s.batchGet(ctx, repoPK(repo), skManifest, ds, func(av map[string]types.AttributeValue) error {
		var it manifestItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return err
		}
		m, err := it.manifest()
		if err != nil {
			return err
		}
		found[m.Digest] = m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get %d manifests of %s: %w", len(ds), repo, err)
	}
	return found, nil
}

// PutManifest stores m: one unconditional PutItem (the same digest means
// the same content, so overwriting is idempotent). A body stored inline
// counts toward DynamoDB's 400 KB item limit; the core inlines only small
// manifests.
func (s *MetaStore) PutManifest(ctx context.Context, repo string, m storage.Manifest) error {
	if err := s.putItem(ctx, newManifestItem(repo, m), writeCond{}); err != nil {
		return fmt.Errorf("put manifest %s@%s: %w", repo, m.Digest, err)
	}
	return nil
}

// DeleteManifest removes d: one DeleteItem conditioned on the item existing.
func (s *MetaStore) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return s.deleteExisting(ctx, "manifest", repo, skManifest+string(d), string(d))
}

// GetTag returns tag name of repo: one GetItem.
func (s *MetaStore) GetTag(ctx context.Context, repo, name string) (storage.Tag, error) {
	var it tagItem
	ok, err := s.getItem(ctx, repoPK(repo), skTag+name, &it)
	switch {
	case err != nil:
		return storage.Tag{}, fmt.Errorf("get tag %s:%s: %w", repo, name, err)
	case !ok:
		return storage.Tag{}, fmt.Errorf("get tag %s:%s: %w", repo, name, storage.ErrNotFound)
	}
	return it.tag(), nil
}

// PutTag points a tag at a manifest: one unconditional PutItem (the last
// writer wins).
func (s *MetaStore) PutTag(ctx context.Context, repo string, t storage.Tag) error {
	it := tagItem{PK: repoPK(repo), SK: skTag + t.Name, Digest: string(t.Digest), Updated: unixNano(t.Updated)}
	if err := s.putItem(ctx, it, writeCond{}); err != nil {
		return fmt.Errorf("put tag %s:%s: %w", repo, t.Name, err)
	}
	return nil
}

// DeleteTag removes a tag: one DeleteItem conditioned on the item existing.
func (s *MetaStore) DeleteTag(ctx context.Context, repo, name string) error {
	return s.deleteExisting(ctx, "tag", repo, skTag+name, name)
}

// ListTags lists the tags of repo in lexical order: one Query on the
// repository's partition with begins_with(SK, "T#") per page (more only
// past 1 MB of tags), never a Scan.
func (s *MetaStore) ListTags(ctx context.Context, repo string, p storage.Page) ([]storage.Tag, error) {
	tags, err := queryItems(ctx, s, repoPK(repo), skTag, p, func(it tagItem) (storage.Tag, error) { return it.tag(), nil })
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return tags, nil
}

// PutReferrer records r under subject: one unconditional PutItem.
func (s *MetaStore) PutReferrer(ctx context.Context, repo string, subject digest.Digest, r storage.Referrer) error {
	prefix, err := referrerPrefix(subject)
	if err != nil {
		return fmt.Errorf("put referrer %s@%s: %w", repo, r.Digest, err)
	}
	it := referrerItem{
		PK:           repoPK(repo),
		SK:           prefix + string(r.Digest),
		MediaType:    r.MediaType,
		Size:         r.Size,
		ArtifactType: r.ArtifactType,
		Annotations:  r.Annotations,
	}
	if err := s.putItem(ctx, it, writeCond{}); err != nil {
		return fmt.Errorf("put referrer %s@%s of %s: %w", repo, r.Digest, subject, err)
	}
	return nil
}

// DeleteReferrer removes r from subject's referrers: one unconditional
// DeleteItem (a missing one is fine).
func (s *MetaStore) DeleteReferrer(ctx context.Context, repo string, subject, r digest.Digest) error {
	prefix, err := referrerPrefix(subject)
	if err != nil {
		return fmt.Errorf("delete referrer %s@%s: %w", repo, r, err)
	}
	if err := s.deleteItem(ctx, repoPK(repo), prefix+string(r), writeCond{}); err != nil {
		return fmt.Errorf("delete referrer %s@%s of %s: %w", repo, r, subject, err)
	}
	return nil
}

// ListReferrers lists subject's referrers in lexical order of digest: one
// Query with begins_with(SK, "F#<subject>#") per page.
func (s *MetaStore) ListReferrers(ctx context.Context, repo string, subject digest.Digest, p storage.Page) ([]storage.Referrer, error) {
	prefix, err := referrerPrefix(subject)
	if err != nil {
		return nil, fmt.Errorf("list referrers %s@%s: %w", repo, subject, err)
	}
	var refs []storage.Referrer
	err = s.query(ctx, repoPK(repo), prefix, p.After, p.Limit, func(av map[string]types.AttributeValue) error {
		var it referrerItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return err
		}
		refs = append(refs, it.referrer())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list referrers %s@%s: %w", repo, subject, err)
	}
	return refs, nil
}

// PutRepository records repo in the catalog: one unconditional PutItem.
func (s *MetaStore) PutRepository(ctx context.Context, repo string) error {
	return s.putRepo(ctx, pkRepos, repo)
}

// PutLinkedRepository records repo among those with links: one
// unconditional PutItem.
func (s *MetaStore) PutLinkedRepository(ctx context.Context, repo string) error {
	return s.putRepo(ctx, pkLinked, repo)
}

func (s *MetaStore) putRepo(ctx context.Context, pk, repo string) error {
	if err := s.putItem(ctx, repoItem{PK: pk, SK: repo}, writeCond{}); err != nil {
		return fmt.Errorf("put repository %s in %s: %w", repo, pk, err)
	}
	return nil
}

// HasRepository reports whether repo is in the catalog: one GetItem.
func (s *MetaStore) HasRepository(ctx context.Context, repo string) (bool, error) {
	var it repoItem
	ok, err := s.getItem(ctx, pkRepos, repo, &it)
	if err != nil {
		return false, fmt.Errorf("has repository %s: %w", repo, err)
	}
	return ok, nil
}

// ListRepositories lists repositories in lexical order: one Query on the
// REPOS partition per page.
func (s *MetaStore) ListRepositories(ctx context.Context, p storage.Page) ([]string, error) {
	return s.listRepos(ctx, pkRepos, p)
}

// ListLinkedRepositories lists the repositories with links: one Query on
// the LINKED partition per page.
func (s *MetaStore) ListLinkedRepositories(ctx context.Context, p storage.Page) ([]string, error) {
	return s.listRepos(ctx, pkLinked, p)
}

func (s *MetaStore) listRepos(ctx context.Context, pk string, p storage.Page) ([]string, error) {
	var repos []string
	err := s.query(ctx, pk, "", p.After, p.Limit, func(av map[string]types.AttributeValue) error {
		sk, ok := av[attrSK].(*types.AttributeValueMemberS)
		if !ok {
			return fmt.Errorf("%s item without a string SK", pk)
		}
		repos = append(repos, sk.Value)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories of %s: %w", pk, err)
	}
	return repos, nil
}
