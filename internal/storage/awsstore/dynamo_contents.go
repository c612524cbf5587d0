package awsstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// This file holds the content records and the link methods a collection
// uses: single-item conditional UpdateItem and DeleteItem calls. A failed
// condition is told apart from a missing item by one GetItem, on the
// failure path only (dynalite has no ReturnValuesOnConditionCheckFailure).

func numAV(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func strAV(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// update runs one UpdateItem returning the new item into out.
func (s *MetaStore) update(ctx context.Context, pk, sk, expr string, c writeCond, out any) error {
	res, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(pk, sk),
		UpdateExpression:          &expr,
		ConditionExpression:       exprOrNil(c.expr),
		ExpressionAttributeNames:  c.names,
		ExpressionAttributeValues: c.values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return err
	}
	return attributevalue.UnmarshalMap(res.Attributes, out)
}

// failed turns a lost condition on (pk, sk) into ErrNotFound if the item
// is gone and ErrConflict if it is there.
func (s *MetaStore) failed(ctx context.Context, pk, sk string, err error) error {
	if !conditionFailed(err) {
		return err
	}
	var it struct{}
	ok, gerr := s.getItem(ctx, pk, sk, &it)
	switch {
	case gerr != nil:
		return gerr
	case ok:
		return storage.ErrConflict
	}
	return storage.ErrNotFound
}

// laterLinked keeps a record's linked time from moving back: a write that
// stalled must not make a record look older than a later push left it.
const laterLinked = "attribute_not_exists(linked) OR linked < :l"

// UpsertContent records c unless a record exists and sets linked either
// way: one UpdateItem with if_not_exists, returning the record.
func (s *MetaStore) UpsertContent(ctx context.Context, c storage.Content) (storage.Content, error) {
	pk, err := contentPK(c.Digest)
	if err != nil {
		return storage.Content{}, fmt.Errorf("upsert content: %w", err)
	}
	var it contentItem
	err = s.update(ctx, pk, string(c.Digest), "SET #k = if_not_exists(#k, :k), #s = if_not_exists(#s, :s), linked = :l", writeCond{
		expr:   laterLinked,
		names:  map[string]string{"#k": "key", "#s": "size"},
		values: map[string]types.AttributeValue{":k": strAV(c.Key), ":s": numAV(c.Size), ":l": numAV(unixNano(c.Linked))},
	}, &it)
	if conditionFailed(err) {
		return s.GetContent(ctx, c.Digest) // linked later already: it exists
	}
	if err != nil {
		return storage.Content{}, fmt.Errorf("upsert content %s: %w", c.Digest, err)
	}
	return it.content(), nil
}

// TouchContent sets linked if the record exists: one UpdateItem.
func (s *MetaStore) TouchContent(ctx context.Context, d digest.Digest, now time.Time) (storage.Content, error) {
	pk, err := contentPK(d)
	if err != nil {
		return storage.Content{}, fmt.Errorf("touch content: %w", err)
	}
	var it contentItem
	err = s.update(ctx, pk, string(d), "SET linked = :l", writeCond{
		expr:   "attribute_exists(PK) AND (" + laterLinked + ")",
		values: map[string]types.AttributeValue{":l": numAV(unixNano(now))},
	}, &it)
	if conditionFailed(err) {
		return s.GetContent(ctx, d) // gone (ErrNotFound), or linked later already
	}
	if err != nil {
		return storage.Content{}, fmt.Errorf("touch content %s: %w", d, err)
	}
	return it.content(), nil
}

// GetContent reads the record of d: one GetItem.
func (s *MetaStore) GetContent(ctx context.Context, d digest.Digest) (storage.Content, error) {
	pk, err := contentPK(d)
	if err != nil {
		return storage.Content{}, fmt.Errorf("get content: %w", err)
	}
	var it contentItem
	ok, err := s.getItem(ctx, pk, string(d), &it)
	switch {
	case err != nil:
		return storage.Content{}, fmt.Errorf("get content %s: %w", d, err)
	case !ok:
		return storage.Content{}, fmt.Errorf("get content %s: %w", d, storage.ErrNotFound)
	}
	return it.content(), nil
}

// DeleteContent deletes the record if it names key and was last linked
// before before: one conditional DeleteItem.
func (s *MetaStore) DeleteContent(ctx context.Context, d digest.Digest, key string, before time.Time) error {
	pk, err := contentPK(d)
	if err != nil {
		return fmt.Errorf("delete content: %w", err)
	}
	err = s.deleteItem(ctx, pk, string(d), writeCond{
		expr:   "#k = :k AND linked < :b",
		names:  map[string]string{"#k": "key"},
		values: map[string]types.AttributeValue{":k": strAV(key), ":b": numAV(unixNano(before))},
	})
	if err != nil {
		return fmt.Errorf("delete content %s: %w", d, s.failed(ctx, pk, string(d), err))
	}
	return nil
}

// ListContents lists the records shard by shard (00 to ff), each in digest
// order: one Query per page and shard.
func (s *MetaStore) ListContents(ctx context.Context, p storage.Page) ([]storage.Content, error) {
	first, after := 0, ""
	if p.After != "" {
		pk, err := contentPK(digest.Digest(p.After))
		if err != nil {
			return nil, fmt.Errorf("list contents: after: %w", err)
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(pk, pkContent), 16, 8)
		if err != nil {
			return nil, fmt.Errorf("list contents: after: %w", err)
		}
		first, after = int(n), p.After
	}
	var out []storage.Content
	for shard := first; shard < 256; shard++ {
		limit := 0
		if p.Limit > 0 {
			limit = p.Limit - len(out)
		}
		cs, err := queryItems(ctx, s, fmt.Sprintf("%s%02x", pkContent, shard), "", storage.Page{After: after, Limit: limit},
			func(it contentItem) (storage.Content, error) { return it.content(), nil })
		if err != nil {
			return nil, fmt.Errorf("list contents: %w", err)
		}
		out = append(out, cs...)
		if p.Limit > 0 && len(out) >= p.Limit {
			break
		}
		after = ""
	}
	return out, nil
}

// queryItems runs query and converts each item, decoded as an I, with
// conv.
func queryItems[I, T any](ctx context.Context, s *MetaStore, pk, prefix string, p storage.Page, conv func(I) (T, error)) ([]T, error) {
	var out []T
	err := s.query(ctx, pk, prefix, p.After, p.Limit, func(av map[string]types.AttributeValue) error {
		var it I
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return err
		}
		v, err := conv(it)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// ListBlobs lists the links of repo: one Query per page.
func (s *MetaStore) ListBlobs(ctx context.Context, repo string, p storage.Page) ([]storage.Blob, error) {
	out, err := queryItems(ctx, s, repoPK(repo), skBlob, p, func(it blobItem) (storage.Blob, error) { return it.blob(), nil })
	if err != nil {
		return nil, fmt.Errorf("list blobs of %s: %w", repo, err)
	}
	return out, nil
}

// ListManifests lists the manifests of repo: one Query per page (a page
// stops early at 1 MB of inline bodies, and the next one follows).
func (s *MetaStore) ListManifests(ctx context.Context, repo string, p storage.Page) ([]storage.Manifest, error) {
	out, err := queryItems(ctx, s, repoPK(repo), skManifest, p, manifestItem.manifest)
	if err != nil {
		return nil, fmt.Errorf("list manifests of %s: %w", repo, err)
	}
	return out, nil
}

// RefreshBlob sets linked and removes doomed if the link exists: one
// UpdateItem.
func (s *MetaStore) RefreshBlob(ctx context.Context, repo string, d digest.Digest, now time.Time) (storage.Blob, error) {
	var it blobItem
	err := s.update(ctx, repoPK(repo), skBlob+string(d), "SET linked = :l REMOVE doomed", writeCond{
		expr:   "attribute_exists(PK)",
		values: map[string]types.AttributeValue{":l": numAV(unixNano(now))},
	}, &it)
	if conditionFailed(err) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Blob{}, fmt.Errorf("refresh blob %s@%s: %w", repo, d, err)
	}
	return it.blob(), nil
}

// DoomBlob marks an unmarked link linked before before: one UpdateItem.
// A link written before links had times (no linked) counts as old.
func (s *MetaStore) DoomBlob(ctx context.Context, repo string, d digest.Digest, token string, before time.Time) error {
	pk, sk := repoPK(repo), skBlob+string(d)
	var it blobItem
	err := s.update(ctx, pk, sk, "SET doomed = :t", writeCond{
		expr:   "attribute_exists(PK) AND attribute_not_exists(doomed) AND (attribute_not_exists(linked) OR linked < :b)",
		values: map[string]types.AttributeValue{":t": strAV(token), ":b": numAV(unixNano(before))},
	}, &it)
	if err != nil {
		return fmt.Errorf("doom blob %s@%s: %w", repo, d, s.failed(ctx, pk, sk, err))
	}
	return nil
}

// DeleteDoomedBlob deletes the link if token still marks it: one
// conditional DeleteItem.
func (s *MetaStore) DeleteDoomedBlob(ctx context.Context, repo string, d digest.Digest, token string) error {
	pk, sk := repoPK(repo), skBlob+string(d)
	err := s.deleteItem(ctx, pk, sk, writeCond{
		expr:   "doomed = :t",
		values: map[string]types.AttributeValue{":t": strAV(token)},
	})
	if err != nil {
		return fmt.Errorf("delete doomed blob %s@%s: %w", repo, d, s.failed(ctx, pk, sk, err))
	}
	return nil
}
