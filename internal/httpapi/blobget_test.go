package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/local"
)

// presigning is the embedded blob store with a Presigner in front, as S3
// has: a URL naming the key, or (off) storage.ErrNoPresign, as an S3 store
// without a presign client answers.
type presigning struct {
	*local.BlobStore
	off bool
}

func (p presigning) PresignGet(_ context.Context, key string, ttl time.Duration) (string, error) {
	if p.off {
		return "", storage.ErrNoPresign
	}
	return "https://bucket.example/" + key + "?ttl=" + ttl.String(), nil
}

// countingGets counts the metadata store's blob reads.
type countingGets struct {
	storage.MetaStore
	n *atomic.Int64
}

func (c countingGets) GetBlob(ctx context.Context, repo string, d digest.Digest) (storage.Blob, error) {
	c.n.Add(1)
	return c.MetaStore.GetBlob(ctx, repo, d)
}

// blobGetServer serves the API over a presigning store (off: one that
// can't presign), counting blob reads, with redirects from redirectMin.
func blobGetServer(t *testing.T, off bool, redirectMin int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	dir := t.TempDir()
	blobs, err := local.NewBlobStore(dir + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	meta, err := local.OpenMetaStore(dir + "/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	n := &atomic.Int64{}
	reg, err := registry.New(presigning{blobs, off}, countingGets{meta, n})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(reg, httpapi.WithRedirectMin(redirectMin)))
	t.Cleanup(srv.Close)
	return srv, n
}

// TestBlobGet: a GET of a blob at or over the redirect threshold answers
// 307 to the presigned URL, one under it (or any, with redirects off, or
// from a store that can't presign) streams the bytes with their digest;
// every GET and HEAD costs one metadata read; ranges are advertised and
// honoured.
func TestBlobGet(t *testing.T) {
	const min = 1000
	cases := []struct {
		name        string
		off         bool  // the store can't presign
		redirectMin int64 // -1: never redirect
		size        int
		redirect    bool
	}{
		{"one byte under the threshold", false, min, min - 1, false},
		{"at the threshold", false, min, min, true},
		{"over the threshold", false, min, 4 * min, true},
		{"redirects off", false, -1, 4 * min, false},
		{"a store that can't presign", true, min, 4 * min, false},
		{"empty blob, threshold 0", false, 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, reads := blobGetServer(t, tc.off, tc.redirectMin)
			data := bytes.Repeat([]byte{'x'}, tc.size)
			d := digest.FromBytes(data)
			loc := "/v2/b/app/blobs/" + d.String()
			if r := do(t, http.MethodPost, srv.URL+"/v2/b/app/blobs/uploads/?digest="+d.String(), data, nil); r.status != http.StatusCreated {
				t.Fatalf("push: %d %s", r.status, r.body)
			}

			reads.Store(0)
			head := do(t, http.MethodHead, srv.URL+loc, nil, nil)
			if head.status != http.StatusOK || head.header.Get("Content-Length") != strconv.Itoa(tc.size) ||
				head.header.Get("Accept-Ranges") != "bytes" || head.header.Get("Docker-Content-Digest") != d.String() {
				t.Errorf("HEAD: %d %v", head.status, head.header)
			}
			if n := reads.Load(); n != 1 {
				t.Errorf("HEAD read the blob's record %d times, want 1", n)
			}

			reads.Store(0)
			get := do(t, http.MethodGet, srv.URL+loc, nil, nil)
			if n := reads.Load(); n != 1 {
				t.Errorf("GET read the blob's record %d times, want 1", n)
			}
			if tc.redirect {
				if get.status != http.StatusTemporaryRedirect || get.header.Get("Location") == "" || len(get.body) != 0 {
					t.Fatalf("GET: %d, Location %q, %d body bytes; want 307 to the presigned URL", get.status, get.header.Get("Location"), len(get.body))
				}
				return
			}
			if get.status != http.StatusOK || !bytes.Equal(get.body, data) || get.header.Get("Location") != "" ||
				get.header.Get("Docker-Content-Digest") != d.String() || get.header.Get("Accept-Ranges") != "bytes" {
				t.Fatalf("GET: %d, %d bytes, headers %v; want 200 and the blob", get.status, len(get.body), get.header)
			}
			if tc.size == 0 {
				return
			}
			rg := do(t, http.MethodGet, srv.URL+loc, nil, map[string]string{"Range": "bytes=1-2"})
			if rg.status != http.StatusPartialContent || !bytes.Equal(rg.body, data[1:3]) ||
				rg.header.Get("Content-Range") != "bytes 1-2/"+strconv.Itoa(tc.size) {
				t.Errorf("ranged GET: %d %q %v", rg.status, rg.body, rg.header)
			}
			out := do(t, http.MethodGet, srv.URL+loc, nil, map[string]string{"Range": "bytes=" + strconv.Itoa(tc.size) + "-"})
			if out.status != http.StatusRequestedRangeNotSatisfiable || out.header.Get("Content-Range") != "bytes */"+strconv.Itoa(tc.size) {
				t.Errorf("range past the end: %d %v", out.status, out.header)
			}
		})
	}
}
