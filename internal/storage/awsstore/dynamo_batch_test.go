package awsstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage/awsstore"
)

// throttlingBatch is a DynamoAPI whose BatchGetItem serves at most serve
// keys per request and hands the rest back as UnprocessedKeys, as DynamoDB
// does under throttling or past 16 MB. Every key names a blob that exists.
// Only BatchGetItem is implemented; other calls panic on the nil embed.
type throttlingBatch struct {
	awsstore.DynamoAPI
	serve int

	mu           sync.Mutex
	requests     []int // keys per request
	inconsistent int   // requests without ConsistentRead
}

func (f *throttlingBatch) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &dynamodb.BatchGetItemOutput{
		Responses:       map[string][]map[string]types.AttributeValue{},
		UnprocessedKeys: map[string]types.KeysAndAttributes{},
	}
	for table, ka := range in.RequestItems {
		f.requests = append(f.requests, len(ka.Keys))
		if ka.ConsistentRead == nil || !*ka.ConsistentRead {
			f.inconsistent++
		}
		if len(ka.Keys) > 100 {
			return nil, fmt.Errorf("%d keys in one request", len(ka.Keys))
		}
		n := min(f.serve, len(ka.Keys))
		for _, k := range ka.Keys[:n] {
			out.Responses[table] = append(out.Responses[table], map[string]types.AttributeValue{
				"PK":   k["PK"],
				"SK":   k["SK"],
				"size": &types.AttributeValueMemberN{Value: "7"},
			})
		}
		if rest := ka.Keys[n:]; len(rest) > 0 {
			out.UnprocessedKeys[table] = types.KeysAndAttributes{Keys: rest, ConsistentRead: ka.ConsistentRead}
		}
	}
	return out, nil
}

func dynamoDigests(n int) []digest.Digest {
	var ds []digest.Digest
	for i := range n {
		ds = append(ds, digest.FromString(fmt.Sprint(i)))
	}
	return ds
}

func TestDynamoBatchGetUnprocessedKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ask      int
		serve    int
		requests []int
	}{
		{"all served", 150, 100, []int{100, 50}},
		{"partial rounds", 150, 40, []int{100, 60, 20, 50, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &throttlingBatch{serve: tc.serve}
			ms := awsstore.NewMetaStore(f, "t", awsstore.WithBatchRetry(3, time.Millisecond))
			ds := dynamoDigests(tc.ask)
			got, err := ms.GetBlobs(t.Context(), "r", append(ds, ds...))
			noDynamoErr(t, err)
			if len(got) != tc.ask {
				t.Errorf("got %d blobs, want %d", len(got), tc.ask)
			}
			for _, d := range ds {
				if b := got[d]; b.Digest != d || b.Size != 7 {
					t.Errorf("blob %s: got %+v", d, b)
				}
			}
			if fmt.Sprint(f.requests) != fmt.Sprint(tc.requests) {
				t.Errorf("keys per request: got %v, want %v", f.requests, tc.requests)
			}
			// Resent keys keep the strongly consistent read of the first try.
			if f.inconsistent != 0 {
				t.Errorf("%d requests without ConsistentRead, want 0", f.inconsistent)
			}
		})
	}
}

func TestDynamoBatchGetGivesUp(t *testing.T) {
	t.Parallel()
	f := &throttlingBatch{serve: 0}
	ms := awsstore.NewMetaStore(f, "t", awsstore.WithBatchRetry(3, time.Millisecond))
	_, err := ms.GetBlobs(t.Context(), "r", dynamoDigests(5))
	if err == nil || !strings.Contains(err.Error(), "unprocessed") {
		t.Fatalf("got error %v, want one about unprocessed keys", err)
	}
	if len(f.requests) != 3 {
		t.Errorf("got %d requests, want 3", len(f.requests))
	}

	// A cancelled context stops the backoff.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ms = awsstore.NewMetaStore(f, "t", awsstore.WithBatchRetry(3, time.Hour))
	_, err = ms.GetBlobs(ctx, "r", dynamoDigests(5))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want one wrapping context.Canceled", err)
	}
}
