package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/lambdaweb"
	"github.com/skiff-registry/skiff/internal/origin"
	"github.com/skiff-registry/skiff/internal/server"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// A stack with the ingest service switched on or off mid-upload, or a
// client whose requests reach both origins, must lose nothing: a session
// is all in S3 and DynamoDB, so the blob function and the ingest service,
// two processes with their own stores, continue each other's sessions.

const crossSecret = "cross-origin-secret"

// origins are the two ways into one deployment's stores.
type origins struct {
	function lambdaweb.HandlerFunc // the blob function, 4 MiB cap
	ingest   *httptest.Server      // skiff serve --ingest's handler
}

func newOrigins(t *testing.T) origins {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "skiff-cross-" + hex.EncodeToString(b)
	open := func(maxBody int64) http.Handler {
		cfg := config.Config{Backend: config.BackendAWS, Bucket: name, Table: name, CreateResources: true, MaxBody: maxBody, RedirectMin: -1}
		stores, err := backend.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stores.Close() })
		srv, err := server.New(context.Background(), cfg, stores, httpapi.GroupBlob, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return srv.Handler
	}
	fn := lambdaweb.Handler(open(deploy.LambdaMaxBody), lambdaweb.WithOriginSecret(crossSecret))
	ing := httptest.NewServer(origin.Require(open(0), origin.Fixed(crossSecret), slog.New(slog.DiscardHandler)))
	t.Cleanup(ing.Close)
	return origins{function: fn, ingest: ing}
}

// answer is what either origin said.
type answer struct {
	status int
	header http.Header
	body   string
}

// viaFunction sends a request as a Function URL event.
func (o origins) viaFunction(t *testing.T, method, target string, header map[string]string, body []byte) answer {
	t.Helper()
	path, query, _ := strings.Cut(target, "?")
	h := map[string]string{"host": "blob.lambda-url.us-east-1.on.aws", strings.ToLower(deploy.OriginSecretHeader): crossSecret}
	for k, v := range header {
		h[strings.ToLower(k)] = v
	}
	if body != nil {
		h["content-length"] = strconv.Itoa(len(body))
	}
	ev := &events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: path, RawQueryString: query, Headers: h,
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
			Method: method, Path: path, SourceIP: "192.0.2.10",
		}},
	}
	resp, err := o.function(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	hh := http.Header{}
	for k, v := range resp.Headers {
		hh.Set(k, v)
	}
	return answer{resp.StatusCode, hh, resp.Body}
}

// viaIngest sends a request over HTTP to the ingest service, as CloudFront
// does (with the origin secret).
func (o origins) viaIngest(t *testing.T, method, target string, header map[string]string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, o.ingest.URL+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(deploy.OriginSecretHeader, crossSecret)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// TestSessionAcrossOrigins: an upload started through the blob function
// and finished through the ingest service commits with the right digest,
// and so does the reverse; each chunk is sized for the origin it goes to
// (the function's under its cap, the ingest's far over it).
func TestSessionAcrossOrigins(t *testing.T) {
	t.Parallel()
	testenv.AWS(t)
	o := newOrigins(t)
	type send func(t *testing.T, method, target string, header map[string]string, body []byte) answer
	steps := []struct {
		name               string
		start, mid, finish send
		midSize            int
	}{
		// POST and 3 MiB through the function, 10 MiB and the PUT through the ingest.
		{"function then ingest", o.viaFunction, o.viaIngest, o.viaIngest, 10 << 20},
		// POST and 10 MiB through the ingest, 3 MiB and the PUT through the function.
		{"ingest then function", o.viaIngest, o.viaFunction, o.viaFunction, 3 << 20},
	}
	for _, tc := range steps {
		t.Run(tc.name, func(t *testing.T) {
			first := 3 << 20
			if tc.midSize == 3<<20 {
				first = 10 << 20
			}
			blob := make([]byte, first+tc.midSize)
			_, _ = rand.Read(blob)
			digest := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
			repo := "cross/" + strings.ReplaceAll(tc.name, " ", "-")

			a := tc.start(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
			if a.status != http.StatusAccepted {
				t.Fatalf("POST: %d %s", a.status, a.body)
			}
			loc := a.header.Get("Location")
			patch := func(via send, from, to int) string {
				t.Helper()
				a := via(t, http.MethodPatch, loc, map[string]string{
					"Content-Type":  "application/octet-stream",
					"Content-Range": fmt.Sprintf("%d-%d", from, to-1),
				}, blob[from:to])
				if a.status != http.StatusAccepted || a.header.Get("Range") != fmt.Sprintf("0-%d", to-1) {
					t.Fatalf("PATCH %d-%d: %d, Range %q: %s", from, to-1, a.status, a.header.Get("Range"), a.body)
				}
				return a.header.Get("Location")
			}
			firstVia := tc.start
			loc = patch(firstVia, 0, first)
			loc = patch(tc.mid, first, len(blob))
			sep := "?"
			if strings.Contains(loc, "?") {
				sep = "&"
			}
			a = tc.finish(t, http.MethodPut, loc+sep+"digest="+digest, nil, nil)
			if a.status != http.StatusCreated || a.header.Get("Docker-Content-Digest") != digest {
				t.Fatalf("PUT: %d %s", a.status, a.body)
			}
			// Both origins see the committed blob, with its size.
			for name, via := range map[string]send{"function": o.viaFunction, "ingest": o.viaIngest} {
				a := via(t, http.MethodHead, "/v2/"+repo+"/blobs/"+digest, nil, nil)
				if a.status != http.StatusOK || a.header.Get("Content-Length") != strconv.Itoa(len(blob)) {
					t.Errorf("HEAD through the %s: %d, Content-Length %q; want 200, %d", name, a.status, a.header.Get("Content-Length"), len(blob))
				}
			}
		})
	}
}
