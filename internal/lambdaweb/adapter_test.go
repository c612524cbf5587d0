package lambdaweb

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/pkg/oci"
)

const testSecret = "s3cret-origin-value"

// seen is what the handler saw of a request.
type seen struct {
	Method, Host, RemoteAddr, RequestURI string
	Path, RawPath, EscapedPath, RawQuery string
	Query                                map[string][]string
	ContentLength                        int64
	Header                               map[string]string
	Body                                 []byte
}

// recorder answers 200 and records the request.
type recorder struct{ got *seen }

func (rec recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		panic(err)
	}
	h := map[string]string{}
	for k, v := range r.Header {
		h[k] = strings.Join(v, "|")
	}
	*rec.got = seen{
		Method: r.Method, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI,
		Path: r.URL.Path, RawPath: r.URL.RawPath, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		Query: r.URL.Query(), ContentLength: r.ContentLength, Header: h, Body: b,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{}`))
}

func loadEvent(t *testing.T, name string) *events.LambdaFunctionURLRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &ev
}

// cfHeaders are the headers every test event carries besides its own.
var cfHeaders = map[string]string{
	"X-Forwarded-Proto":          "https",
	"X-Forwarded-Port":           "443",
	"X-Forwarded-For":            "203.0.113.7",
	"X-Amzn-Trace-Id":            "Root=1-6745f000-0123456789abcdef01234567",
	"Via":                        "2.0 0123456789abcdef0123456789abcdef.cloudfront.net (CloudFront)",
	"X-Amz-Cf-Id":                "redacted-cf-id==",
	"Cloudfront-Viewer-Address":  "203.0.113.7:51234",
	"Cloudfront-Forwarded-Proto": "https",
	"User-Agent":                 "regctl/v0.11.7",
}

func headers(extra map[string]string) map[string]string {
	h := map[string]string{}
	for k, v := range cfHeaders {
		h[k] = v
	}
	for k, v := range extra {
		if v == "" {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	return h
}

const fnHost = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"

func TestRequests(t *testing.T) {
	t.Parallel()
	binary := append(bytes.Repeat(func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}(), 3), 0x00, 0xff, 0xfe)
	tests := []struct {
		name string
		file string
		want seen
	}{
		{
			name: "multi-value headers and cookies",
			file: "get-manifest-multivalue.json",
			want: seen{
				Method: "GET", Host: fnHost, RemoteAddr: "198.51.100.2",
				RequestURI: "/v2/library/alpine/manifests/latest", Path: "/v2/library/alpine/manifests/latest",
				EscapedPath: "/v2/library/alpine/manifests/latest", Query: map[string][]string{},
				Header: headers(map[string]string{
					// One value, commas and all: splitting would break
					// values that contain commas.
					"Accept":          "application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json",
					"X-Forwarded-For": "192.0.2.99, 203.0.113.7",
					"Authorization":   "Bearer eyJhbGciOiJIUzI1NiJ9.e30.redacted",
					"Cookie":          "session=abc; theme=dark",
				}),
				Body: []byte{},
			},
		},
		{
			name: "binary body",
			file: "patch-binary-body.json",
			want: seen{
				Method: "PATCH", Host: fnHost, RemoteAddr: "198.51.100.2",
				RequestURI: "/v2/team/app/blobs/uploads/3b1c5e.1795716000.0a1b2c3d4e5f",
				Path:       "/v2/team/app/blobs/uploads/3b1c5e.1795716000.0a1b2c3d4e5f", EscapedPath: "/v2/team/app/blobs/uploads/3b1c5e.1795716000.0a1b2c3d4e5f",
				Query: map[string][]string{}, ContentLength: int64(len(binary)),
				Header: headers(map[string]string{"Content-Type": "application/octet-stream", "Content-Length": "771", "Content-Range": "0-770"}),
				Body:   binary,
			},
		},
		{
			name: "query with + and %2F kept as sent",
			file: "catalog-query-plus-slash.json",
			want: seen{
				Method: "GET", Host: fnHost, RemoteAddr: "198.51.100.2",
				RequestURI: "/v2/_catalog?n=10&last=team%2Fapp+one&x=a+b", Path: "/v2/_catalog", EscapedPath: "/v2/_catalog",
				RawQuery: "n=10&last=team%2Fapp+one&x=a+b",
				Query:    map[string][]string{"n": {"10"}, "last": {"team/app one"}, "x": {"a b"}},
				Header:   headers(nil), Body: []byte{},
			},
		},
		{
			name: "escaped path",
			file: "escaped-path.json",
			want: seen{
				Method: "HEAD", Host: fnHost, RemoteAddr: "198.51.100.2",
				RequestURI: "/v2/team%2Fapp/manifests/v1.0%2Bbuild",
				// As net/http's server parses the same request line: the
				// router sees the decoded Path, RawPath keeps the escapes.
				Path: "/v2/team/app/manifests/v1.0+build", RawPath: "/v2/team%2Fapp/manifests/v1.0%2Bbuild",
				EscapedPath: "/v2/team%2Fapp/manifests/v1.0%2Bbuild", Query: map[string][]string{},
				Header: headers(nil), Body: []byte{},
			},
		},
		{
			name: "text body",
			file: "put-manifest-text-body.json",
			want: func() seen {
				ev := loadEvent(t, "put-manifest-text-body.json")
				return seen{
					Method: "PUT", Host: fnHost, RemoteAddr: "198.51.100.2",
					RequestURI: "/v2/team/app/manifests/v1?tag=v1&tag=latest", Path: "/v2/team/app/manifests/v1",
					EscapedPath: "/v2/team/app/manifests/v1", RawQuery: "tag=v1&tag=latest",
					Query: map[string][]string{"tag": {"v1", "latest"}}, ContentLength: int64(len(ev.Body)),
					Header: headers(map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Content-Length": strconv.Itoa(len(ev.Body))}),
					Body:   []byte(ev.Body),
				}
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got seen
			h := Handler(recorder{&got}, WithOriginSecret(testSecret))
			resp, err := h(context.Background(), loadEvent(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, resp.Body)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("request (-got +want):\n%s", diff)
			}
		})
	}
}

func TestOriginSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		file       string
		secret     string
		wantStatus int
	}{
		{"missing", "missing-origin-secret.json", testSecret, http.StatusForbidden},
		{"wrong", "wrong-origin-secret.json", testSecret, http.StatusForbidden},
		{"right", "get-manifest-multivalue.json", testSecret, http.StatusOK},
		{"not configured", "missing-origin-secret.json", "", http.StatusOK},
		{"not configured, header still removed", "wrong-origin-secret.json", "", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got seen
			resp, err := Handler(recorder{&got}, WithOriginSecret(tc.secret))(context.Background(), loadEvent(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			if tc.wantStatus == http.StatusForbidden {
				if got.Method != "" {
					t.Errorf("the handler ran for a refused request")
				}
				errs, err := oci.ParseEnvelope([]byte(resp.Body))
				if err != nil || len(errs) != 1 || errs[0].Code != oci.CodeDenied || !strings.Contains(errs[0].Message, "front door") {
					t.Errorf("body %s: want one DENIED error about the front door (%v)", resp.Body, err)
				}
				if ct := resp.Headers["Content-Type"]; ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				return
			}
			if _, ok := got.Header["X-Skiff-Origin-Secret"]; ok {
				t.Errorf("the handler saw the origin secret header")
			}
		})
	}
}

// TestLargeBody runs the real API with a body cap below the event's body:
// 413 SIZE_INVALID from the handler, before it reads anything.
func TestLargeBody(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blobs, err := local.NewBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := local.OpenMetaStore(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	reg, err := registry.New(blobs, meta)
	if err != nil {
		t.Fatal(err)
	}
	ev := loadEvent(t, "put-blob-large-body.json")
	body := &countingHandler{next: httpapi.New(reg, httpapi.WithMaxBody(4096))}
	resp, err := Handler(body, WithOriginSecret(testSecret))(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413; body %s", resp.StatusCode, resp.Body)
	}
	errs, err := oci.ParseEnvelope([]byte(resp.Body))
	if err != nil || len(errs) != 1 || errs[0].Code != oci.CodeSizeInvalid {
		t.Errorf("body %s: want one SIZE_INVALID (%v)", resp.Body, err)
	}
	if body.contentLength != 8192 || body.read != 0 {
		t.Errorf("handler saw Content-Length %d and read %d bytes, want 8192 and 0", body.contentLength, body.read)
	}
}

type countingHandler struct {
	next          http.Handler
	contentLength int64
	read          int64
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.contentLength = r.ContentLength
	cr := &countingReader{r: r.Body}
	r.Body = cr
	c.next.ServeHTTP(w, r)
	c.read = cr.n
}

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

func TestBadEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(ev *events.LambdaFunctionURLRequest)
	}{
		{"bad escape in path", func(ev *events.LambdaFunctionURLRequest) { ev.RawPath = "/v2/%zz/manifests/x" }},
		{"base64 of a bad length", func(ev *events.LambdaFunctionURLRequest) { ev.Body = "AAA" }},
		{"base64 with a bad character", func(ev *events.LambdaFunctionURLRequest) { ev.Body = "AA*A" }},
		{"base64 badly padded", func(ev *events.LambdaFunctionURLRequest) { ev.Body = "AA=A" }},
		{"no method", func(ev *events.LambdaFunctionURLRequest) { ev.RequestContext.HTTP.Method = "" }},
		{"bad method", func(ev *events.LambdaFunctionURLRequest) { ev.RequestContext.HTTP.Method = "GE T" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := loadEvent(t, "patch-binary-body.json")
			tc.mutate(ev)
			var got seen
			resp, err := Handler(recorder{&got}, WithOriginSecret(testSecret))(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest || got.Method != "" {
				t.Errorf("status %d (handler ran: %v), want 400 without the handler; body %s", resp.StatusCode, got.Method != "", resp.Body)
			}
		})
	}
}

func TestDecodedLen(t *testing.T) {
	t.Parallel()
	for n := range 10 {
		b := bytes.Repeat([]byte{0xab}, n)
		s := base64.StdEncoding.EncodeToString(b)
		got, err := decodedLen(s)
		if err != nil || got != int64(n) {
			t.Errorf("decodedLen(%q) = %d, %v; want %d", s, got, err, n)
		}
	}
}

func TestResponses(t *testing.T) {
	t.Parallel()
	manifest := `{"schemaVersion":2,"annotations":{"note":"café <&>"}}`
	tests := []struct {
		name    string
		method  string
		handler http.HandlerFunc
		want    events.LambdaFunctionURLResponse
	}{
		{
			name: "JSON manifest as text",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Docker-Content-Digest", "sha256:abc")
				w.Write([]byte(manifest))
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{
				"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": "sha256:abc",
			}, Body: manifest},
		},
		{
			name: "binary blob as base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write([]byte{0, 1, 2, 0xff})
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream"},
				Body: "AAEC/w==", IsBase64Encoded: true},
		},
		{
			name: "JSON type but not UTF-8: base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte{'"', 0xff, '"'})
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"},
				Body: "Iv8i", IsBase64Encoded: true},
		},
		{
			name: "no Content-Type: not sniffed, sent as base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("<html>hello</html>"))
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{},
				Body: base64.StdEncoding.EncodeToString([]byte("<html>hello</html>")), IsBase64Encoded: true},
		},
		{
			name: "multi-value headers joined, Set-Cookie to cookies, status kept",
			handler: func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				h.Add("Link", `</v2/_catalog?last=a&n=1>; rel="next"`)
				h.Add("Link", `</v2/_catalog?last=b&n=1>; rel="other"`)
				h.Add("Set-Cookie", "a=1")
				h.Add("Set-Cookie", "b=2; Path=/")
				h.Set("Location", "/v2/x/blobs/uploads/id")
				w.WriteHeader(http.StatusAccepted)
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 202, Headers: map[string]string{
				"Link":     `</v2/_catalog?last=a&n=1>; rel="next",</v2/_catalog?last=b&n=1>; rel="other"`,
				"Location": "/v2/x/blobs/uploads/id",
			}, Cookies: []string{"a=1", "b=2; Path=/"}},
		},
		{
			name:   "HEAD keeps Content-Length, sends no body",
			method: http.MethodHead,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("Content-Length", "1234")
				w.WriteHeader(http.StatusOK)
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream", "Content-Length": "1234"}},
		},
		{
			name: "header changes after WriteHeader are not sent",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusNotFound)
				w.Header().Set("X-Late", "1")
				w.Write([]byte("gone"))
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 404, Headers: map[string]string{"Content-Type": "text/plain"}, Body: "gone"},
		},
		{
			name:    "nothing written: 200, empty",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			want:    events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := loadEvent(t, "get-manifest-multivalue.json")
			if tc.method != "" {
				ev.RequestContext.HTTP.Method = tc.method
			}
			got, err := Handler(tc.handler, WithOriginSecret(testSecret))(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("response (-got +want):\n%s", diff)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantCode   oci.ErrorCode
	}{
		{
			name: "response over the payload limit",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("X-Request-Id", "req-1")
				for range 10 {
					if _, err := w.Write(make([]byte, 1000)); err != nil {
						return
					}
				}
			},
			wantStatus: http.StatusBadGateway, wantCode: oci.CodeUnknown,
		},
		{
			name: "base64 pushes it over the limit",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(make([]byte, 6000))
			},
			wantStatus: http.StatusBadGateway, wantCode: oci.CodeUnknown,
		},
		{
			name: "panic",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Write([]byte("half an answer"))
				panic("boom")
			},
			wantStatus: http.StatusInternalServerError, wantCode: oci.CodeUnknown,
		},
		{
			name:       "abort panic",
			handler:    func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) },
			wantStatus: http.StatusInternalServerError, wantCode: oci.CodeUnknown,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := Handler(tc.handler, WithOriginSecret(testSecret), withMaxPayload(7000))(context.Background(), loadEvent(t, "get-manifest-multivalue.json"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			errs, err := oci.ParseEnvelope([]byte(resp.Body))
			if err != nil || len(errs) != 1 || errs[0].Code != tc.wantCode {
				t.Errorf("body %s: want one %s error (%v)", resp.Body, tc.wantCode, err)
			}
			if resp.IsBase64Encoded || resp.Headers["Content-Type"] != "application/json" {
				t.Errorf("error answer not plain JSON: %+v", resp)
			}
		})
	}
}

func TestNilEvent(t *testing.T) {
	t.Parallel()
	resp, err := Handler(http.NotFoundHandler())(context.Background(), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got %d, %v; want 400", resp.StatusCode, err)
	}
}

func TestUptimeFrom(t *testing.T) {
	t.Parallel()
	// starttime (field 22) is 12345 ticks = 123.45 s after boot.
	stat := "4242 (boot strap) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 7 0 12345 1000000 200 18446744073709551615"
	got, err := uptimeFrom(stat, "123.95 456.00\n")
	if err != nil || got.Milliseconds() != 500 {
		t.Errorf("uptimeFrom = %v, %v; want 500ms", got, err)
	}
	if _, err := processUptime(); err != nil {
		t.Logf("no /proc here: %v", err)
	}
}
