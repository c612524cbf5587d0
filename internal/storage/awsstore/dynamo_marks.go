package awsstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// This file holds the retention marks on manifests and the conditional
// tag delete: one conditional UpdateItem or DeleteItem each.

// markManifest runs one conditional UpdateItem on the manifest d of repo.
func (s *MetaStore) markManifest(ctx context.Context, op, repo string, d digest.Digest, expr string, c writeCond) (storage.Manifest, error) {
	pk, sk := repoPK(repo), skManifest+string(d)
	var it manifestItem
	if err := s.update(ctx, pk, sk, expr, c, &it); err != nil {
		return storage.Manifest{}, fmt.Errorf("%s %s@%s: %w", op, repo, d, s.failed(ctx, pk, sk, err))
	}
	return it.manifest()
}

// RefreshManifest sets touched and removes doomed: one UpdateItem.
func (s *MetaStore) RefreshManifest(ctx context.Context, repo string, d digest.Digest, now time.Time) (storage.Manifest, error) {
	return s.markManifest(ctx, "refresh manifest", repo, d, "SET touched = :n REMOVE doomed", writeCond{
		expr:   "attribute_exists(PK)",
		values: map[string]types.AttributeValue{":n": numAV(unixNano(now))},
	})
}

// DoomManifest marks an unmarked manifest touched before before: one
// UpdateItem. An item from before manifests had a touched time counts as
// old.
func (s *MetaStore) DoomManifest(ctx context.Context, repo string, d digest.Digest, token string, before time.Time) error {
	_, err := s.markManifest(ctx, "doom manifest", repo, d, "SET doomed = :t, expired = :x", writeCond{
		expr:   "attribute_exists(PK) AND attribute_not_exists(doomed) AND (attribute_not_exists(touched) OR touched < :b)",
		values: map[string]types.AttributeValue{":t": strAV(token), ":x": &types.AttributeValueMemberBOOL{Value: true}, ":b": numAV(unixNano(before))},
	})
	return err
}

// ExpireManifest sets expired if created is still the item's: one
// UpdateItem.
func (s *MetaStore) ExpireManifest(ctx context.Context, repo string, d digest.Digest, created time.Time) error {
	_, err := s.markManifest(ctx, "expire manifest", repo, d, "SET expired = :x", writeCond{
		expr:   "created = :c",
		values: map[string]types.AttributeValue{":x": &types.AttributeValueMemberBOOL{Value: true}, ":c": strAV(formatItemTime(created))},
	})
	return err
}

// ReviveManifest removes doomed and expired: one UpdateItem.
func (s *MetaStore) ReviveManifest(ctx context.Context, repo string, d digest.Digest) error {
	_, err := s.markManifest(ctx, "revive manifest", repo, d, "REMOVE doomed, expired", condExists)
	return err
}

// DeleteDoomedManifest deletes the manifest if token still marks it: one
// conditional DeleteItem.
func (s *MetaStore) DeleteDoomedManifest(ctx context.Context, repo string, d digest.Digest, token string) error {
	pk, sk := repoPK(repo), skManifest+string(d)
	err := s.deleteItem(ctx, pk, sk, writeCond{
		expr:   "doomed = :t",
		values: map[string]types.AttributeValue{":t": strAV(token)},
	})
	if err != nil {
		return fmt.Errorf("delete doomed manifest %s@%s: %w", repo, d, s.failed(ctx, pk, sk, err))
	}
	return nil
}

// DeleteTagIf deletes the tag if it still names t.Digest with t.Updated:
// one conditional DeleteItem.
func (s *MetaStore) DeleteTagIf(ctx context.Context, repo string, t storage.Tag) error {
	pk, sk := repoPK(repo), skTag+t.Name
	c := writeCond{expr: "#d = :d", names: map[string]string{"#d": "digest"}, values: map[string]types.AttributeValue{":d": strAV(string(t.Digest))}}
	if t.Updated.IsZero() {
		c.expr += " AND attribute_not_exists(updated)"
	} else {
		c.expr += " AND updated = :u"
		c.values[":u"] = numAV(unixNano(t.Updated))
	}
	if err := s.deleteItem(ctx, pk, sk, c); err != nil {
		return fmt.Errorf("delete tag %s:%s if it names %s: %w", repo, t.Name, t.Digest, s.failed(ctx, pk, sk, err))
	}
	return nil
}
