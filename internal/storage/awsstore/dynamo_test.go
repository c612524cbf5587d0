package awsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/awsstore"
	"github.com/skiff-registry/skiff/internal/storage/storagetest"
	"github.com/skiff-registry/skiff/internal/testenv"
)

var (
	_ storage.MetaStore  = (*awsstore.MetaStore)(nil)
	_ awsstore.DynamoAPI = (*dynamodb.Client)(nil)
	_ awsstore.TableAPI  = (*dynamodb.Client)(nil)
)

// dynamoClient returns a client for the DynamoDB stand-in: the one
// AWS_ENDPOINT_URL_DYNAMODB names, or dynalite started for this process
// (testenv.DynamoDB; skipped or failed without Node.js).
func dynamoClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	testenv.DynamoDB(t)
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return dynamodb.NewFromConfig(cfg)
}

// dynamoTable creates a table of its own for t and deletes it when t ends.
func dynamoTable(t *testing.T, client awsstore.TableAPI) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	table := "skiff-test-" + hex.EncodeToString(b)
	if err := awsstore.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := awsstore.DeleteTable(ctx, client, table); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return table
}

// newDynamoStore returns a MetaStore on a fresh table whose requests c
// counts.
func newDynamoStore(t *testing.T) (*awsstore.MetaStore, *dynamoCounter) {
	t.Helper()
	client := dynamoClient(t)
	c := &dynamoCounter{DynamoAPI: client}
	return awsstore.NewMetaStore(c, dynamoTable(t, client)), c
}

func TestDynamoMetaStore(t *testing.T) {
	testenv.DynamoDB(t) // once here, not in each of the suite's subtests
	storagetest.RunMetaStore(t, func(t *testing.T) storage.MetaStore {
		ms, _ := newDynamoStore(t)
		return ms
	})
}

// dynamoCounter counts the requests a MetaStore makes, by operation.
type dynamoCounter struct {
	awsstore.DynamoAPI
	get, put, del, query, batchGet atomic.Int64
}

func (c *dynamoCounter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.get.Add(1)
	return c.DynamoAPI.GetItem(ctx, in, o...)
}

func (c *dynamoCounter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.put.Add(1)
	return c.DynamoAPI.PutItem(ctx, in, o...)
}

func (c *dynamoCounter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.del.Add(1)
	return c.DynamoAPI.DeleteItem(ctx, in, o...)
}

func (c *dynamoCounter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.query.Add(1)
	return c.DynamoAPI.Query(ctx, in, o...)
}

func (c *dynamoCounter) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c.batchGet.Add(1)
	return c.DynamoAPI.BatchGetItem(ctx, in, o...)
}

// counts returns the counts by operation and resets them.
func (c *dynamoCounter) counts() map[string]int64 {
	m := map[string]int64{
		"GetItem":      c.get.Swap(0),
		"PutItem":      c.put.Swap(0),
		"DeleteItem":   c.del.Swap(0),
		"Query":        c.query.Swap(0),
		"BatchGetItem": c.batchGet.Swap(0),
	}
	nonZero := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			nonZero[k] = v
		}
	}
	return nonZero
}

// dynamoParallel runs fn(i) for i in [0, n) on a few goroutines and returns the
// first error.
func dynamoParallel(n int, fn func(i int) error) error {
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		mu   sync.Mutex
		errs []error
	)
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// TestDynamoListTagsQueries lists 1,000 tags in pages of 100: every page is
// one Query on the repository's partition (no Scan exists in DynamoAPI to
// fall back on), in lexical order.
func TestDynamoListTagsQueries(t *testing.T) {
	t.Parallel()
	ms, c := newDynamoStore(t)
	ctx := t.Context()
	const n = 1000
	names := make([]string, n)
	for i := range n {
		// Mixed widths and cases, so lexical order is not insertion order.
		names[i] = fmt.Sprintf("%c%d", "vVa_0"[i%5], (i*7919)%n)
	}
	noDynamoErr(t, dynamoParallel(n, func(i int) error {
		return ms.PutTag(ctx, "app/web", storage.Tag{Name: names[i], Digest: digest.FromString(names[i])})
	}))
	// Neighbouring repositories whose names extend "app/web".
	for _, repo := range []string{"app/webx", "app/web/x", "app/we"} {
		noDynamoErr(t, ms.PutTag(ctx, repo, storage.Tag{Name: "v5", Digest: digest.FromString(repo)}))
	}
	c.counts()

	var got []string
	p := storage.Page{Limit: 100}
	pages := 0
	for {
		page, err := ms.ListTags(ctx, "app/web", p)
		noDynamoErr(t, err)
		if len(page) == 0 {
			break
		}
		pages++
		if len(page) != 100 {
			t.Errorf("page %d: got %d tags, want 100", pages, len(page))
		}
		for _, tag := range page {
			got = append(got, tag.Name)
		}
		p.After = page[len(page)-1].Name
	}
	want := slices.Sorted(slices.Values(names))
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("paged tags mismatch (-got +want):\n%s", diff)
	}
	// Ten full pages, then the empty one that ends the walk.
	if diff := cmp.Diff(c.counts(), map[string]int64{"Query": 11}); diff != "" {
		t.Errorf("requests for 11 ListTags calls (-got +want):\n%s", diff)
	}

	// Without a limit, DynamoDB's own paging (1 MB) decides; 1,000 small
	// tags fit in one response.
	all, err := ms.ListTags(ctx, "app/web", storage.Page{})
	noDynamoErr(t, err)
	if len(all) != n {
		t.Errorf("ListTags without limit: got %d tags, want %d", len(all), n)
	}
	if diff := cmp.Diff(c.counts(), map[string]int64{"Query": 1}); diff != "" {
		t.Errorf("requests for ListTags without limit (-got +want):\n%s", diff)
	}
}

// TestDynamoBatchGetRequests checks that 150 digests (and duplicates) take
// two BatchGetItem requests: 100 + 50 distinct keys.
func TestDynamoBatchGetRequests(t *testing.T) {
	t.Parallel()
	ms, c := newDynamoStore(t)
	ctx := t.Context()
	var ask []digest.Digest
	for i := range 150 {
		d := digest.FromString(fmt.Sprint("layer ", i))
		ask = append(ask, d)
		if i%3 != 0 {
			noDynamoErr(t, ms.PutBlob(ctx, "r", storage.Blob{Digest: d, Size: int64(i), Key: "blobs/" + d.Encoded()}))
			noDynamoErr(t, ms.PutManifest(ctx, "r", storage.Manifest{Digest: d, MediaType: "m", Size: int64(i), Body: []byte{byte(i)}}))
		}
	}
	ask = append(ask, ask[:20]...)
	c.counts()

	blobs, err := ms.GetBlobs(ctx, "r", ask)
	noDynamoErr(t, err)
	if len(blobs) != 100 {
		t.Errorf("GetBlobs: got %d blobs, want 100", len(blobs))
	}
	if diff := cmp.Diff(c.counts(), map[string]int64{"BatchGetItem": 2}); diff != "" {
		t.Errorf("requests for GetBlobs of 150 digests (-got +want):\n%s", diff)
	}
	manifests, err := ms.GetManifests(ctx, "r", ask)
	noDynamoErr(t, err)
	if len(manifests) != 100 {
		t.Errorf("GetManifests: got %d manifests, want 100", len(manifests))
	}
	if diff := cmp.Diff(c.counts(), map[string]int64{"BatchGetItem": 2}); diff != "" {
		t.Errorf("requests for GetManifests of 150 digests (-got +want):\n%s", diff)
	}
	_, err = ms.GetBlobs(ctx, "r", nil)
	noDynamoErr(t, err)
	if diff := cmp.Diff(c.counts(), map[string]int64{}); diff != "" {
		t.Errorf("requests for GetBlobs(nil) (-got +want):\n%s", diff)
	}
}

// TestDynamoConcurrentUpdateUpload races 50 writers that all read version
// 1: the conditional PutItem lets exactly one win.
func TestDynamoConcurrentUpdateUpload(t *testing.T) {
	t.Parallel()
	ms, c := newDynamoStore(t)
	ctx := t.Context()
	u := storage.Upload{ID: "race", Repo: "r", Version: 1, Started: time.UnixMilli(1e12).UTC()}
	noDynamoErr(t, ms.CreateUpload(ctx, u))
	c.counts()

	const writers = 50
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			w := u
			w.Offset = int64(i + 1)
			<-start
			errs[i] = ms.UpdateUpload(ctx, w, 1)
		})
	}
	close(start)
	wg.Wait()
	var winners []int
	for i, err := range errs {
		switch {
		case err == nil:
			winners = append(winners, i)
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("writer %d: got %v, want nil or ErrConflict", i, err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("winners: got %v, want exactly one", winners)
	}
	if diff := cmp.Diff(c.counts(), map[string]int64{"PutItem": writers}); diff != "" {
		t.Errorf("requests for %d UpdateUpload calls (-got +want):\n%s", writers, diff)
	}
	got, err := ms.GetUpload(ctx, "race")
	noDynamoErr(t, err)
	if got.Version != 2 || got.Offset != int64(winners[0]+1) {
		t.Errorf("stored session: version %d, offset %d; want version 2, offset %d", got.Version, got.Offset, winners[0]+1)
	}
}

// TestDynamoCreateTableTwice checks that CreateTable accepts an existing
// table (and, on dynalite, that the missing TTL API is tolerated).
func TestDynamoCreateTableTwice(t *testing.T) {
	t.Parallel()
	client := dynamoClient(t)
	table := dynamoTable(t, client)
	if err := awsstore.CreateTable(t.Context(), client, table); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	noDynamoErr(t, awsstore.DeleteTable(t.Context(), client, "skiff-test-never-created"))
}

func noDynamoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// A client that aborts a request mid-body (the SDK does when a context is
// cancelled during a send, as when a registry client drops its
// connection) must not take the stand-in down for every test after it:
// dynalite as shipped dies of it (scripts/standins/dynalite-server.js).
func TestDynamoStandInSurvivesAbortedRequests(t *testing.T) {
	t.Parallel()
	ms, _ := newDynamoStore(t)
	endpoint := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	host := strings.TrimPrefix(endpoint, "http://")
	for range 3 {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 1000\r\n\r\n{\"a\":", host)
		time.Sleep(50 * time.Millisecond)
		conn.Close()
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := ms.GetSetting(t.Context(), "nothing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the stand-in after aborted requests: %v", err)
	}
}
