package awsstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/skiff-registry/skiff/internal/storage"
)

// counterRetries bounds Reserve's rounds: each lost round means another
// request opened or advanced the window in between, so a few suffice.
const counterRetries = 8

// counterItem is a key's count in its window. Ends is in epoch
// milliseconds (a number, so conditions compare it); ExpiresAt lets TTL
// drop the item once the window is over.
type counterItem struct {
	PK        string `dynamodbav:"PK"`
	SK        string `dynamodbav:"SK"`
	N         int64  `dynamodbav:"n"`
	Ends      int64  `dynamodbav:"ends"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
}

func (it counterItem) count() storage.Count {
	return storage.Count{N: it.N, Ends: time.UnixMilli(it.Ends).UTC()}
}

var counterNames = map[string]string{"#n": "n", "#e": "ends"}

func counterNow(now time.Time) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)}}
}

// Reserve counts one event unless the limit is reached: an UpdateItem
// that adds one if the stored window is still open and below the limit,
// else a PutItem that opens a new window if none is open (the item is
// missing or its window ended). Either write is conditional and atomic, so
// of concurrent events at most limit are counted. When both conditions
// fail, a read tells a full window (not counted) from a lost race (another
// request opened the window in between: the round starts over). Usually
// one request; two when a window opens, three when the limit is reached.
func (s *MetaStore) Reserve(ctx context.Context, key string, now time.Time, window time.Duration, limit int64) (storage.Count, bool, error) {
	if key == "" {
		return storage.Count{}, false, fmt.Errorf("reserve: empty key")
	}
	pk := pkCounter + key
	for range counterRetries {
		vals := counterNow(now)
		vals[":one"] = &types.AttributeValueMemberN{Value: "1"}
		cond := "#e > :now"
		if limit > 0 {
			cond += " AND #n < :limit"
			vals[":limit"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(limit, 10)}
		}
		out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &s.table,
			Key:                       itemKey(pk, skCounter),
			UpdateExpression:          aws.String("ADD #n :one"),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  counterNames,
			ExpressionAttributeValues: vals,
			ReturnValues:              types.ReturnValueAllNew,
		})
		switch {
		case err == nil:
			var it counterItem
			if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
				return storage.Count{}, false, fmt.Errorf("reserve %s: decode: %w", key, err)
			}
			return it.count(), true, nil
		case !conditionFailed(err):
			return storage.Count{}, false, fmt.Errorf("reserve %s: %w", key, err)
		}
		ends := now.Add(window)
		it := counterItem{PK: pk, SK: skCounter, N: 1, Ends: ends.UnixMilli(), ExpiresAt: ends.Unix() + 1}
		err = s.putItem(ctx, it, writeCond{
			expr:   "attribute_not_exists(PK) OR #e <= :now",
			names:  map[string]string{"#e": "ends"},
			values: counterNow(now),
		})
		switch {
		case err == nil:
			return it.count(), true, nil
		case !conditionFailed(err):
			return storage.Count{}, false, fmt.Errorf("reserve %s: %w", key, err)
		}
		var cur counterItem
		found, err := s.getItem(ctx, pk, skCounter, &cur)
		if err != nil {
			return storage.Count{}, false, fmt.Errorf("reserve %s: read counter: %w", key, err)
		}
		if c := cur.count(); found && now.Before(c.Ends) && limit > 0 && c.N >= limit {
			return c, false, nil
		}
	}
	return storage.Count{}, false, fmt.Errorf("reserve %s: the counter kept changing for %d rounds", key, counterRetries)
}

// Release takes one back: an UpdateItem that adds -1 if the window is the
// one reserved in (ends), the count is above zero and below the limit; a
// failed condition means the window is over or used up, not an error.
func (s *MetaStore) Release(ctx context.Context, key string, ends time.Time, limit int64) error {
	cond := "#e = :ends AND #n > :zero"
	vals := map[string]types.AttributeValue{
		":minus": &types.AttributeValueMemberN{Value: "-1"},
		":zero":  &types.AttributeValueMemberN{Value: "0"},
		":ends":  &types.AttributeValueMemberN{Value: strconv.FormatInt(ends.UnixMilli(), 10)},
	}
	if limit > 0 {
		cond += " AND #n < :limit"
		vals[":limit"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(limit, 10)}
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(pkCounter+key, skCounter),
		UpdateExpression:          aws.String("ADD #n :minus"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  counterNames,
		ExpressionAttributeValues: vals,
	})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("release %s: %w", key, err)
	}
	return nil
}

// GetCounts reads the keys' counters with BatchGetItem (one request per
// 100 keys) and keeps those whose window is open at now.
func (s *MetaStore) GetCounts(ctx context.Context, keys []string, now time.Time) (map[string]storage.Count, error) {
	out := map[string]storage.Count{}
	seen := map[string]bool{}
	var req []map[string]types.AttributeValue
	for _, k := range keys {
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		req = append(req, itemKey(pkCounter+k, skCounter))
	}
	for len(req) > 0 {
		n := min(len(req), maxBatchGet)
		err := s.batchGetChunk(ctx, req[:n], func(av map[string]types.AttributeValue) error {
			var it counterItem
			if err := attributevalue.UnmarshalMap(av, &it); err != nil {
				return fmt.Errorf("decode counter: %w", err)
			}
			if c := it.count(); now.Before(c.Ends) {
				out[it.PK[len(pkCounter):]] = c
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("get counts: %w", err)
		}
		req = req[n:]
	}
	return out, nil
}
