package awsstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/skiff-registry/skiff/internal/storage"
)

// This file holds the versioned items: upload sessions and settings. Each
// write is one conditional PutItem or DeleteItem, so two writers that read
// the same version can never both win, without a transaction.

// CreateUpload stores a new session as given: one PutItem conditioned on
// attribute_not_exists(PK); a taken id is ErrExists.
func (s *MetaStore) CreateUpload(ctx context.Context, u storage.Upload) error {
	err := s.putItem(ctx, newUploadItem(u, u.Version), condNotExists)
	switch {
	case conditionFailed(err):
		return fmt.Errorf("create upload %s: %w", u.ID, storage.ErrExists)
	case err != nil:
		return fmt.Errorf("create upload %s: %w", u.ID, err)
	}
	return nil
}

// GetUpload returns session id: one GetItem. Sessions past Expires may
// still be returned until DynamoDB's TTL removes them; the core checks
// Expires.
func (s *MetaStore) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	var it uploadItem
	ok, err := s.getItem(ctx, pkUpload+id, skUpload, &it)
	switch {
	case err != nil:
		return storage.Upload{}, fmt.Errorf("get upload %s: %w", id, err)
	case !ok:
		return storage.Upload{}, fmt.Errorf("get upload %s: %w", id, storage.ErrNotFound)
	}
	u, err := it.upload()
	if err != nil {
		return storage.Upload{}, fmt.Errorf("get upload %s: %w", id, err)
	}
	return u, nil
}

// UpdateUpload replaces the session with Version prev+1: one PutItem
// conditioned on version = prev. A missing item fails the condition too, so
// a deleted session is ErrConflict.
func (s *MetaStore) UpdateUpload(ctx context.Context, u storage.Upload, prev int64) error {
	err := s.putItem(ctx, newUploadItem(u, prev+1), condVersion(prev))
	switch {
	case conditionFailed(err):
		return fmt.Errorf("update upload %s from version %d: %w", u.ID, prev, storage.ErrConflict)
	case err != nil:
		return fmt.Errorf("update upload %s: %w", u.ID, err)
	}
	return nil
}

// GetSetting returns the setting at key: one GetItem.
func (s *MetaStore) GetSetting(ctx context.Context, key string) (storage.Setting, error) {
	var it settingItem
	ok, err := s.getItem(ctx, pkSettings, key, &it)
	switch {
	case err != nil:
		return storage.Setting{}, fmt.Errorf("get setting %s: %w", key, err)
	case !ok:
		return storage.Setting{}, fmt.Errorf("get setting %s: %w", key, storage.ErrNotFound)
	}
	return it.setting(), nil
}

// PutSetting writes s with Version prev+1: one PutItem conditioned on
// attribute_not_exists(PK) when prev is 0, on version = prev otherwise.
func (s *MetaStore) PutSetting(ctx context.Context, st storage.Setting, prev int64) error {
	c := condVersion(prev)
	if prev == 0 {
		c = condNotExists
	}
	it := settingItem{PK: pkSettings, SK: st.Key, Value: st.Value, Version: prev + 1}
	err := s.putItem(ctx, it, c)
	switch {
	case conditionFailed(err):
		return fmt.Errorf("put setting %s from version %d: %w", st.Key, prev, storage.ErrConflict)
	case err != nil:
		return fmt.Errorf("put setting %s: %w", st.Key, err)
	}
	return nil
}

// DeleteSetting removes key if its version is prev: one DeleteItem
// conditioned on "attribute_not_exists(PK) OR version = prev" returning the
// old item. The condition holds for a missing item (deleting nothing), and
// no old item then means ErrNotFound, so one request tells all three
// outcomes apart without a read first.
func (s *MetaStore) DeleteSetting(ctx context.Context, key string, prev int64) error {
	c := condVersion(prev)
	out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(pkSettings, key),
		ConditionExpression:       exprOrNil("attribute_not_exists(PK) OR " + c.expr),
		ExpressionAttributeNames:  c.names,
		ExpressionAttributeValues: c.values,
		ReturnValues:              types.ReturnValueAllOld,
	})
	switch {
	case conditionFailed(err):
		return fmt.Errorf("delete setting %s at version %d: %w", key, prev, storage.ErrConflict)
	case err != nil:
		return fmt.Errorf("delete setting %s: %w", key, err)
	case len(out.Attributes) == 0:
		return fmt.Errorf("delete setting %s: %w", key, storage.ErrNotFound)
	}
	return nil
}

// ListSettings lists settings in lexical order of key: one Query on the
// SETTINGS partition per page (begins_with on the sort key for a prefix).
func (s *MetaStore) ListSettings(ctx context.Context, prefix string, p storage.Page) ([]storage.Setting, error) {
	var settings []storage.Setting
	err := s.query(ctx, pkSettings, prefix, p.After, p.Limit, func(av map[string]types.AttributeValue) error {
		var it settingItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return err
		}
		settings = append(settings, it.setting())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list settings: %w", err)
	}
	return settings, nil
}
