package httpapi_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/httpapi"
)

// TestBadInput sends every kind of malformed request a client can make and
// checks the spec's status and error codes, then that nothing was left
// behind: no repository, tag, manifest or blob appears.
func TestBadInput(t *testing.T) {
	t.Parallel()
	srv := newServer(t, httpapi.WithMaxBody(1<<20))
	base := srv.URL + "/v2/bad/one"
	config, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("layer bytes")
	missing := imageManifest(t, config, layer) // neither blob pushed
	good := []byte("some blob")
	goodDigest := digest.FromBytes(good)
	wrongDigest := digest.FromString("something else")

	newSession := func(t *testing.T, repo string) string {
		r := do(t, "POST", srv.URL+"/v2/"+repo+"/blobs/uploads/", nil, nil)
		if r.status != http.StatusAccepted {
			t.Fatalf("start upload: %d %s", r.status, r.body)
		}
		return location(t, srv.URL, r)
	}
	type req struct {
		method, url string
		body        []byte
		header      map[string]string
	}
	tests := []struct {
		name   string
		req    func(t *testing.T) req
		status int
		codes  []string
	}{
		{"manifest not json", func(t *testing.T) req {
			return req{"PUT", base + "/manifests/v1", []byte("{not json"), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}}
		}, 400, []string{"MANIFEST_INVALID"}},
		{"manifest over 4 MiB", func(t *testing.T) req {
			body := append([]byte(`{"schemaVersion":2,"x":"`), bytes.Repeat([]byte("a"), 4<<20)...)
			return req{"PUT", base + "/manifests/v1", append(body, `"}`...), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}}
		}, 413, []string{"SIZE_INVALID"}},
		{"unknown media type", func(t *testing.T) req {
			return req{"PUT", base + "/manifests/v1", missing, map[string]string{"Content-Type": "application/x-something"}}
		}, 400, []string{"MANIFEST_INVALID"}},
		{"media type disagrees with body", func(t *testing.T) req {
			return req{"PUT", base + "/manifests/v1", missing, map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json"}}
		}, 400, []string{"MANIFEST_INVALID"}},
		{"schema1 refused", func(t *testing.T) req {
			return req{"PUT", base + "/manifests/v1", []byte(`{"schemaVersion":1,"name":"bad/one","tag":"v1","fsLayers":[]}`), map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}}
		}, 400, []string{"MANIFEST_INVALID"}},
		{"manifest blobs unknown, one error each", func(t *testing.T) req {
			return req{"PUT", base + "/manifests/v1", missing, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}}
		}, 400, []string{"MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"}},
		{"manifest digest does not match body", func(t *testing.T) req {
			return req{"PUT", base + "/manifests/" + wrongDigest.String(), missing, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}}
		}, 400, []string{"DIGEST_INVALID"}},
		{"invalid tag", func(t *testing.T) req {
			return req{"PUT", base + "/manifests/-v1", missing, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}}
		}, 400, []string{"MANIFEST_INVALID"}},
		{"malformed digest", func(t *testing.T) req { return req{"GET", base + "/blobs/sha256:xyz", nil, nil} }, 400, []string{"DIGEST_INVALID"}},
		{"unsupported digest algorithm", func(t *testing.T) req {
			return req{"HEAD", base + "/blobs/sha384:" + strings.Repeat("a", 96), nil, nil}
		}, 400, nil},
		{"upper-case name", func(t *testing.T) req { return req{"GET", srv.URL + "/v2/Bad/one/tags/list", nil, nil} }, 400, []string{"NAME_INVALID"}},
		{"dot-dot name", func(t *testing.T) req { return req{"GET", srv.URL + "/v2/bad/../one/tags/list", nil, nil} }, 400, []string{"NAME_INVALID"}},
		{"over-long name", func(t *testing.T) req {
			return req{"GET", srv.URL + "/v2/" + strings.Repeat("a", 256) + "/tags/list", nil, nil}
		}, 400, []string{"NAME_INVALID"}},
		{"monolithic digest mismatch", func(t *testing.T) req {
			return req{"POST", base + "/blobs/uploads/?digest=" + wrongDigest.String(), good, nil}
		}, 400, []string{"DIGEST_INVALID"}},
		{"monolithic malformed digest", func(t *testing.T) req {
			return req{"POST", base + "/blobs/uploads/?digest=sha256:0", good, nil}
		}, 400, []string{"DIGEST_INVALID"}},
		{"chunk out of order", func(t *testing.T) req {
			return req{"PATCH", newSession(t, "bad/one"), good, map[string]string{"Content-Range": "5-13"}}
		}, 416, []string{"BLOB_UPLOAD_INVALID"}},
		{"malformed Content-Range", func(t *testing.T) req {
			return req{"PATCH", newSession(t, "bad/one"), good, map[string]string{"Content-Range": "bytes=nine"}}
		}, 416, []string{"BLOB_UPLOAD_INVALID"}},
		{"Content-Range disagrees with length", func(t *testing.T) req {
			return req{"PATCH", newSession(t, "bad/one"), good, map[string]string{"Content-Range": "0-99"}}
		}, 416, []string{"BLOB_UPLOAD_INVALID"}},
		{"unknown session PATCH", func(t *testing.T) req { return req{"PATCH", base + "/blobs/uploads/0123456789abcdef", good, nil} }, 404, []string{"BLOB_UPLOAD_UNKNOWN"}},
		{"unknown session PUT", func(t *testing.T) req {
			return req{"PUT", base + "/blobs/uploads/nope?digest=" + goodDigest.String(), good, nil}
		}, 404, []string{"BLOB_UPLOAD_UNKNOWN"}},
		{"unknown session GET", func(t *testing.T) req { return req{"GET", base + "/blobs/uploads/nope", nil, nil} }, 404, []string{"BLOB_UPLOAD_UNKNOWN"}},
		{"unknown session DELETE", func(t *testing.T) req { return req{"DELETE", base + "/blobs/uploads/nope", nil, nil} }, 404, []string{"BLOB_UPLOAD_UNKNOWN"}},
		{"session of another repository", func(t *testing.T) req {
			loc := strings.Replace(newSession(t, "bad/other"), "/bad/other/", "/bad/one/", 1)
			return req{"PUT", loc + "?digest=" + goodDigest.String(), good, nil}
		}, 404, []string{"BLOB_UPLOAD_UNKNOWN"}},
		{"commit without digest", func(t *testing.T) req { return req{"PUT", newSession(t, "bad/one"), good, nil} }, 400, []string{"DIGEST_INVALID"}},
		{"commit digest mismatch", func(t *testing.T) req {
			loc := newSession(t, "bad/one")
			if r := do(t, "PATCH", loc, good, map[string]string{"Content-Range": "0-8"}); r.status != 202 {
				t.Fatalf("patch: %d %s", r.status, r.body)
			}
			return req{"PUT", loc + "?digest=" + wrongDigest.String(), nil, nil}
		}, 400, []string{"DIGEST_INVALID"}},
		{"body over the limit", func(t *testing.T) req {
			return req{"PATCH", newSession(t, "bad/one"), make([]byte, 1<<20+1), nil}
		}, 413, []string{"SIZE_INVALID"}},
		{"blob unknown", func(t *testing.T) req { return req{"GET", base + "/blobs/" + goodDigest.String(), nil, nil} }, 404, []string{"BLOB_UNKNOWN"}},
		{"manifest unknown", func(t *testing.T) req { return req{"GET", base + "/manifests/nope", nil, nil} }, 404, []string{"MANIFEST_UNKNOWN"}},
		{"method not allowed", func(t *testing.T) req { return req{"POST", base + "/manifests/v1", nil, nil} }, 405, []string{"UNSUPPORTED"}},
		{"no such endpoint", func(t *testing.T) req { return req{"GET", srv.URL + "/v2/bad/one/nothing", nil, nil} }, 404, []string{"UNSUPPORTED"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rq := tc.req(t)
			r := do(t, rq.method, rq.url, rq.body, rq.header)
			if r.status != tc.status {
				t.Fatalf("status: got %d, want %d (body %s)", r.status, tc.status, r.body)
			}
			if rq.method == "HEAD" {
				return
			}
			if diff := cmp.Diff(r.codes(t), tc.codes); diff != "" {
				t.Errorf("codes (-got +want):\n%s", diff)
			}
		})
	}

	// Nothing was left behind.
	if r := do(t, "GET", srv.URL+"/v2/_catalog", nil, nil); string(r.body) != `{"repositories":[]}` {
		t.Errorf("catalog after bad input: %s", r.body)
	}
	// No manifest landed, so the repository does not exist.
	if r := do(t, "GET", base+"/tags/list", nil, nil); r.status != 404 || !slices.Equal(r.codes(t), []string{"NAME_UNKNOWN"}) {
		t.Errorf("tags after bad input: %d %s", r.status, r.body)
	}
	for _, d := range []digest.Digest{goodDigest, wrongDigest, digest.FromBytes(config), digest.FromBytes(layer)} {
		if r := do(t, "HEAD", base+"/blobs/"+d.String(), nil, nil); r.status != 404 {
			t.Errorf("blob %s after bad input: status %d", d, r.status)
		}
	}
	if r := do(t, "GET", base+"/manifests/"+digest.FromBytes(missing).String(), nil, nil); r.status != 404 {
		t.Errorf("refused manifest readable: status %d", r.status)
	}
}
