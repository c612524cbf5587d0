package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// testPart keeps parts small so tests exercise multipart paths quickly.
const testPart = 64 << 10

// newServer runs the API over the embedded store in a temp dir.
func newServer(t *testing.T, opts ...httpapi.Option) *httptest.Server {
	t.Helper()
	return newServerAt(t, t.TempDir(), opts...)
}

// newServerAt is newServer with the store's files in dir.
func newServerAt(t *testing.T, dir string, opts ...httpapi.Option) *httptest.Server {
	t.Helper()
	return newServerWith(t, dir, nil, opts...)
}

// newServerWith is newServerAt with more registry options.
func newServerWith(t *testing.T, dir string, regOpts []registry.Option, opts ...httpapi.Option) *httptest.Server {
	t.Helper()
	blobs, err := local.NewBlobStore(dir+"/blobs", local.WithMinPartSize(testPart/2))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := local.OpenMetaStore(dir + "/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	reg, err := registry.New(blobs, meta, append([]registry.Option{registry.WithPartSize(testPart, testPart/2)}, regOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(reg, opts...))
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; body may be nil.
func do(t *testing.T, method, url string, body []byte, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// A redirect is an answer to check, not to follow.
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// codes returns the error codes of a spec error envelope.
func (r response) codes(t *testing.T) []string {
	t.Helper()
	errs, err := oci.ParseEnvelope(r.body)
	if err != nil {
		t.Fatalf("body %q is not an error envelope: %v", r.body, err)
	}
	var out []string
	for _, e := range errs {
		if e.Message == "" {
			t.Errorf("error %s has no message", e.Code)
		}
		out = append(out, string(e.Code))
	}
	return out
}

// pushBlob uploads b monolithically to repo.
func pushBlob(t *testing.T, base, repo string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	r := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("push blob: status %d: %s", r.status, r.body)
	}
	return d
}

// imageManifest builds an OCI image manifest over config and layers.
func imageManifest(t *testing.T, config []byte, layers ...[]byte) []byte {
	t.Helper()
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digest.FromBytes(b).String(), "size": len(b)}
	}
	ls := []map[string]any{}
	for _, l := range layers {
		ls = append(ls, desc("application/vnd.oci.image.layer.v1.tar", l))
	}
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     oci.MediaTypeImageManifest,
		"config":        desc("application/vnd.oci.image.config.v1+json", config),
		"layers":        ls,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func location(t *testing.T, base string, r response) string {
	t.Helper()
	loc := r.header.Get("Location")
	if loc == "" {
		t.Fatalf("no Location in %d response", r.status)
	}
	if strings.HasPrefix(loc, "/") {
		return base + loc
	}
	return loc
}
