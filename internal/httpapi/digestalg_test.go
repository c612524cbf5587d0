package httpapi_test

import (
	"bytes"
	"crypto/sha512"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
)

// TestDigestAlgorithmParam: POST ?digest-algorithm= (distribution-spec
// end-4c) names the algorithm a streamed upload will be committed with:
// sha512 named, a blob past the speculative limit commits with sha512;
// not named, the same commit is refused, saying how to push it; an
// algorithm the registry does not hash is refused at the POST.
func TestDigestAlgorithmParam(t *testing.T) {
	t.Parallel()
	srv := newServerWith(t, t.TempDir(), []registry.Option{registry.WithSpeculativeMax(256 << 10)})

	body := bytes.Repeat([]byte("sha512 past the limit "), 20000) // ~430 KiB
	sum := sha512.Sum512(body)
	d := digest.NewDigestFromBytes(digest.SHA512, sum[:])
	push := func(query string) response {
		t.Helper()
		r := do(t, http.MethodPost, srv.URL+"/v2/r/blobs/uploads/"+query, nil, nil)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", query, r.status, r.body)
		}
		r = do(t, http.MethodPatch, location(t, srv.URL, r), body, map[string]string{"Content-Type": "application/octet-stream"})
		if r.status != http.StatusAccepted {
			t.Fatalf("PATCH: %d %s", r.status, r.body)
		}
		loc := location(t, srv.URL, r)
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		return do(t, http.MethodPut, loc+sep+"digest="+d.String(), nil, nil)
	}
	if r := push("?digest-algorithm=sha512"); r.status != http.StatusCreated || r.header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("sha512 named: %d %s", r.status, r.body)
	}
	msg := wantError(t, push(""), http.StatusBadRequest, "DIGEST_INVALID")
	if !strings.Contains(msg, "?digest-algorithm=sha512") {
		t.Errorf("sha512 not named: %q, want it to say how to push", msg)
	}
	for _, alg := range []string{"sha1", "md5", "SHA256"} {
		wantError(t, do(t, http.MethodPost, srv.URL+"/v2/r/blobs/uploads/?digest-algorithm="+alg, nil, nil), http.StatusBadRequest, "DIGEST_INVALID")
	}
}
