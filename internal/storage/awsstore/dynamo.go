package awsstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/opencontainers/go-digest"
)

// DynamoAPI is the part of *dynamodb.Client that MetaStore uses: single-item
// reads and writes (UpdateItem only for counters), Query and BatchGetItem.
// No Scan, no transactions.
type DynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// maxBatchGet is BatchGetItem's limit on keys per request.
const maxBatchGet = 100

// MetaStore implements storage.MetaStore on one DynamoDB table. The item
// layout and the requests of each method are described in doc.go.
type MetaStore struct {
	client DynamoAPI
	table  string
	metaOptions
}

type metaOptions struct {
	consistent   bool
	batchRetries int
	batchBackoff time.Duration
}

// MetaOption configures NewMetaStore.
type MetaOption func(*metaOptions)

// WithBatchRetry sets how BatchGetItem's UnprocessedKeys are retried:
// attempts is how many rounds in a row may return nothing before giving up
// (default 8), backoff the first pause (default 25ms), doubled each round
// up to 1s, with jitter. Values below 1 keep the default.
func WithBatchRetry(attempts int, backoff time.Duration) MetaOption {
	return func(o *metaOptions) {
		if attempts >= 1 {
			o.batchRetries = attempts
		}
		if backoff > 0 {
			o.batchBackoff = backoff
		}
	}
}

// NewMetaStore returns a MetaStore on table, which must exist with string
// keys PK (hash) and SK (range); CreateTable makes one.
func NewMetaStore(client DynamoAPI, table string, opts ...MetaOption) *MetaStore {
	o := metaOptions{consistent: true, batchRetries: 8, batchBackoff: 25 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	return &MetaStore{client: client, table: table, metaOptions: o}
}

// conditionFailed reports whether err is a lost conditional write.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// getItem reads the item at (pk, sk) into out; false if there is none.
func (s *MetaStore) getItem(ctx context.Context, pk, sk string, out any) (bool, error) {
	res, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(pk, sk),
		ConsistentRead: aws.Bool(s.consistent),
	})
	if err != nil {
		return false, err
	}
	if len(res.Item) == 0 {
		return false, nil
	}
	return true, attributevalue.UnmarshalMap(res.Item, out)
}

// writeCond is an optional condition expression with its placeholders.
type writeCond struct {
	expr   string
	names  map[string]string
	values map[string]types.AttributeValue
}

var (
	condExists    = writeCond{expr: "attribute_exists(PK)"}
	condNotExists = writeCond{expr: "attribute_not_exists(PK)"}
)

// condVersion holds if the stored version is prev.
func condVersion(prev int64) writeCond {
	return writeCond{
		expr:   "#v = :prev",
		names:  map[string]string{"#v": attrVersion},
		values: map[string]types.AttributeValue{":prev": &types.AttributeValueMemberN{Value: fmt.Sprint(prev)}},
	}
}

func exprOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// putItem writes item (a struct of this package's item types), replacing
// any item at its key if c holds.
func (s *MetaStore) putItem(ctx context.Context, item any, c writeCond) error {
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return err
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.table,
		Item:                      av,
		ConditionExpression:       exprOrNil(c.expr),
		ExpressionAttributeNames:  c.names,
		ExpressionAttributeValues: c.values,
	})
	return err
}

// deleteItem deletes the item at (pk, sk) if c holds.
func (s *MetaStore) deleteItem(ctx context.Context, pk, sk string, c writeCond) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(pk, sk),
		ConditionExpression:       exprOrNil(c.expr),
		ExpressionAttributeNames:  c.names,
		ExpressionAttributeValues: c.values,
	})
	return err
}

// query calls each for the items of partition pk whose sort key starts
// with prefix, in sort key order, strictly after prefix+after, at most
// limit of them (limit <= 0: all). It pages with LastEvaluatedKey; with a
// limit and no filter one Query usually returns the whole page (DynamoDB
// stops early only at 1 MB).
func (s *MetaStore) query(ctx context.Context, pk, prefix, after string, limit int, each func(map[string]types.AttributeValue) error) error {
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead:            aws.Bool(s.consistent),
	}
	if prefix != "" {
		in.KeyConditionExpression = aws.String("PK = :pk AND begins_with(SK, :prefix)")
		in.ExpressionAttributeValues[":prefix"] = &types.AttributeValueMemberS{Value: prefix}
	}
	// The start key need not exist: Query resumes strictly after it in key
	// order, which is exactly Page.After's meaning.
	if after != "" {
		in.ExclusiveStartKey = itemKey(pk, prefix+after)
	}
	n := 0
	for {
		if limit > 0 {
			in.Limit = aws.Int32(int32(min(limit-n, math.MaxInt32)))
		}
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := each(item); err != nil {
				return err
			}
			n++
		}
		if len(out.LastEvaluatedKey) == 0 || (limit > 0 && n >= limit) {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// batchGet calls each for the items of partition pk at sortPrefix+d for
// each distinct d in ds that exists, in no particular order. BatchGetItem
// takes at most 100 distinct keys, so ds is deduplicated and chunked.
func (s *MetaStore) batchGet(ctx context.Context, pk, sortPrefix string, ds []digest.Digest, each func(map[string]types.AttributeValue) error) error {
	seen := make(map[digest.Digest]bool, len(ds))
	var keys []map[string]types.AttributeValue
	for _, d := range ds {
		if seen[d] {
			continue
		}
		seen[d] = true
		keys = append(keys, itemKey(pk, sortPrefix+string(d)))
	}
	// Chunks go one after the other: a manifest names more than 100
	// digests rarely, and the order keeps the request count predictable.
	for len(keys) > 0 {
		n := min(len(keys), maxBatchGet)
		if err := s.batchGetChunk(ctx, keys[:n], each); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// batchGetChunk gets up to 100 keys, resending UnprocessedKeys (returned
// under throttling or past the 16 MB response limit) with backoff. It gives
// up after batchRetries rounds in a row that return no item at all.
func (s *MetaStore) batchGetChunk(ctx context.Context, keys []map[string]types.AttributeValue, each func(map[string]types.AttributeValue) error) error {
	req := types.KeysAndAttributes{Keys: keys, ConsistentRead: aws.Bool(s.consistent)}
	stalled := 0
	for round := 0; ; round++ {
		out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{s.table: req},
		})
		if err != nil {
			return err
		}
		items := out.Responses[s.table]
		for _, item := range items {
			if err := each(item); err != nil {
				return err
			}
		}
		rest, ok := out.UnprocessedKeys[s.table]
		if !ok || len(rest.Keys) == 0 {
			return nil
		}
		if len(items) > 0 {
			stalled = 0
		} else if stalled++; stalled >= s.batchRetries {
			return fmt.Errorf("%d keys still unprocessed after %d rounds without progress", len(rest.Keys), stalled)
		}
		if err := sleepCtx(ctx, batchDelay(s.batchBackoff, round)); err != nil {
			return err
		}
		req = rest
	}
}

// batchDelay is base doubled round times, capped at 1s (or base if
// larger), with the upper half jittered so parallel callers spread out.
func batchDelay(base time.Duration, round int) time.Duration {
	d := base
	for i := 0; i < round && d < time.Second; i++ {
		d *= 2
	}
	d = min(d, max(base, time.Second))
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
