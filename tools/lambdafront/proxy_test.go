package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// seen is what one upstream (a stand-in Function URL) received.
type seen struct {
	fn, host, method, requestURI string
	header                       http.Header
	body                         []byte
}

// upstreams starts one stand-in Function URL per function; each records
// what it got and answers with answer.
func upstreams(t *testing.T, answer http.HandlerFunc) (map[string]*url.URL, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	ups := map[string]*url.URL{}
	for _, fn := range functions {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, seen{fn: fn, host: r.Host, method: r.Method, requestURI: r.RequestURI, header: r.Header.Clone(), body: b})
			mu.Unlock()
			if answer != nil {
				answer(w, r)
			}
		}))
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		ups[fn] = u
	}
	return ups, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func newProxyFront(t *testing.T, ups map[string]*url.URL, connect string) *httptest.Server {
	t.Helper()
	f := &front{fwd: newForwarder(ups, connect), originSecret: "the-secret", log: slog.New(slog.DiscardHandler), now: time.Now}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestProxyRoutesAndHeaders(t *testing.T) {
	t.Parallel()
	ups, got := upstreams(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	srv := newProxyFront(t, ups, "")

	body := []byte{0, 1, 2, 0xff, 'a'}
	req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/v2/team%2Fapp/blobs/uploads/abc?x=a+b&y=c%2Fd", bytes.NewReader(body))
	req.Host = "registry.example:8443"
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Add("Accept", "a/b")
	req.Header.Add("Accept", "c/d")
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Cookie", "a=1; b=2")
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	req.Header.Set("X-Forwarded-Host", "forged.example")
	req.Header.Set("X-Skiff-Viewer-Ip", "192.0.2.66")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Skiff-Origin-Secret", "forged")
	req.Header.Set("Connection", "X-Private")
	req.Header.Set("X-Private", "hop")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	g := got()
	if len(g) != 1 {
		t.Fatalf("upstream requests: %d", len(g))
	}
	s := g[0]
	if s.fn != "blob" || s.host != ups["blob"].Host || s.method != http.MethodPatch ||
		s.requestURI != "/v2/team%2Fapp/blobs/uploads/abc?x=a+b&y=c%2Fd" || !bytes.Equal(s.body, body) {
		t.Errorf("upstream got fn %s host %s %s %s body %q", s.fn, s.host, s.method, s.requestURI, s.body)
	}
	want := map[string]string{
		"Content-Type":          "application/octet-stream",
		"Accept":                "a/b",
		"Authorization":         "Bearer t",
		"Cookie":                "a=1; b=2",
		"X-Forwarded-For":       "192.0.2.1, 127.0.0.1",
		"X-Forwarded-Host":      "registry.example:8443",
		"X-Skiff-Viewer-Ip":     "127.0.0.1",
		"X-Forwarded-Proto":     "",
		"X-Skiff-Origin-Secret": "the-secret",
		"X-Private":             "",
		"Content-Length":        "5",
		"User-Agent":            "Go-http-client/1.1",
	}
	for k, v := range want {
		if got := s.header.Get(k); got != v {
			t.Errorf("upstream header %s = %q, want %q", k, got, v)
		}
	}
	if diff := cmp.Diff([]string{"a/b", "c/d"}, s.header.Values("Accept")); diff != "" {
		t.Errorf("Accept (-want +got):\n%s", diff)
	}
}

func TestProxyRouting(t *testing.T) {
	t.Parallel()
	ups, got := upstreams(t, nil)
	srv := newProxyFront(t, ups, "")
	paths := map[string]string{
		"/v2/":                           "catalog",
		"/v2/_catalog?n=1":               "catalog",
		"/v2/_skiff/token?scope=x":       "catalog",
		"/v2/a/b/tags/list":              "catalog",
		"/v2/a/b/manifests/latest":       "manifest",
		"/v2/a/referrers/sha256:abc":     "manifest",
		"/v2/a/blobs/sha256:abc":         "blob",
		"/v2/a/blobs/uploads/":           "blob",
		"/v2/a/blobs/uploads/x?digest=y": "blob",
	}
	for p, fn := range paths {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		g := got()
		if last := g[len(g)-1]; last.fn != fn || last.requestURI != p {
			t.Errorf("%s went to %s as %s, want %s", p, last.fn, last.requestURI, fn)
		}
	}
}

func TestProxyResponse(t *testing.T) {
	t.Parallel()
	ups, _ := upstreams(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/a/blobs/sha256:big":
			w.Header().Set("Location", "http://s3.local/bucket/blob?X-Amz-Signature=x")
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/v2/a/blobs/sha256:head":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "1234")
			w.Header().Set("Docker-Content-Digest", "sha256:head")
			w.WriteHeader(http.StatusOK)
		case "/v2/a/manifests/untyped":
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "<html></html>")
		default:
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Content-Encoding", "gzip") // stays as it is: nothing is decoded
			w.Write([]byte("\x1f\x8b raw"))
		}
	})
	srv := newProxyFront(t, ups, "")
	tests := []struct {
		method, path string
		wantStatus   int
		wantHeader   map[string]string
		wantBody     string
	}{
		{http.MethodGet, "/v2/a/blobs/sha256:big", 307, map[string]string{"Location": "http://s3.local/bucket/blob?X-Amz-Signature=x"}, ""},
		{http.MethodHead, "/v2/a/blobs/sha256:head", 200, map[string]string{"Content-Length": "1234", "Docker-Content-Digest": "sha256:head"}, ""},
		{http.MethodGet, "/v2/a/manifests/untyped", 200, map[string]string{"Content-Type": ""}, "<html></html>"},
		{http.MethodGet, "/v2/a/manifests/v1", 200, map[string]string{"Content-Encoding": "gzip"}, "\x1f\x8b raw"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := noRedirects().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || string(b) != tc.wantBody {
			t.Errorf("%s %s: got %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, b, tc.wantStatus, tc.wantBody)
		}
		for k, v := range tc.wantHeader {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s %s: header %s = %q, want %q", tc.method, tc.path, k, got, v)
			}
		}
	}
}

func TestProxyPayloadLimit(t *testing.T) {
	t.Parallel()
	ups, got := upstreams(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	srv := newProxyFront(t, ups, "")
	for _, tc := range []struct {
		size      int
		streamed  bool // no Content-Length: only the event's size tells
		want      int
		wantInMsg string
	}{
		{4 << 20, false, http.StatusAccepted, ""},
		// Declared over the cap: the viewer-request function's own answer.
		{(4 << 20) + 1, false, http.StatusRequestEntityTooLarge, "SIZE_INVALID"},
		{7 << 20, false, http.StatusRequestEntityTooLarge, "SIZE_INVALID"},
		// Streamed past the payload: Lambda's.
		{7 << 20, true, http.StatusRequestEntityTooLarge, "Request must be smaller than"},
	} {
		var body io.Reader = bytes.NewReader(make([]byte, tc.size))
		if tc.streamed {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/v2/a/blobs/uploads/x", body)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("body of %d bytes (streamed %v): status %d, want %d (%s)", tc.size, tc.streamed, resp.StatusCode, tc.want, b)
		}
		if !strings.Contains(string(b), tc.wantInMsg) {
			t.Errorf("body of %d bytes (streamed %v): %s, want %q in it", tc.size, tc.streamed, b, tc.wantInMsg)
		}
	}
	if n := len(got()); n != 1 {
		t.Errorf("%d requests reached the functions, want 1 (oversized ones stop at the front door)", n)
	}
}

// TestProxyConnect checks -connect: the Function URL's host is only a
// name (as *.lambda-url.us-east-1.localhost.localstack.cloud is without
// DNS), the connection goes to the given address, and the request still
// names the URL's host.
func TestProxyConnect(t *testing.T) {
	t.Parallel()
	real, got := upstreams(t, nil)
	ups := map[string]*url.URL{}
	for _, fn := range functions {
		ups[fn] = &url.URL{Scheme: "http", Host: fn + "-id.lambda-url.us-east-1.invalid:4566"}
	}
	srv := newProxyFront(t, ups, real["catalog"].Host)
	resp, err := http.Get(srv.URL + "/v2/a/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	g := got()
	if resp.StatusCode != 200 || len(g) != 1 || g[0].host != "manifest-id.lambda-url.us-east-1.invalid:4566" {
		t.Errorf("status %d, upstream requests %+v", resp.StatusCode, g)
	}
}

func TestProxyUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ups := map[string]*url.URL{}
	for _, fn := range functions {
		ups[fn] = &url.URL{Scheme: "http", Host: addr}
	}
	srv := newProxyFront(t, ups, "")
	resp, err := http.Get(srv.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d %s, want 502", resp.StatusCode, b)
	}
}

func TestParseUpstreams(t *testing.T) {
	t.Parallel()
	good := "manifest=http://m.lambda-url.us-east-1.localhost.localstack.cloud:4566/, blob=http://b.example:4566,catalog=https://c.example/"
	ups, err := parseUpstreams(good)
	if err != nil {
		t.Fatal(err)
	}
	gotHosts := map[string]string{}
	for fn, u := range ups {
		gotHosts[fn] = u.String()
	}
	wantHosts := map[string]string{
		"manifest": "http://m.lambda-url.us-east-1.localhost.localstack.cloud:4566",
		"blob":     "http://b.example:4566",
		"catalog":  "https://c.example",
	}
	if diff := cmp.Diff(wantHosts, gotHosts); diff != "" {
		t.Errorf("parseUpstreams (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		"",
		"manifest=http://m/,blob=http://b/",
		"manifest=http://m/,blob=http://b/,catalog=http://c/,manifest=http://m/",
		"manifest=http://m/,blob=http://b/,catalog=http://c/,other=http://o/",
		"manifest=http://m/x,blob=http://b/,catalog=http://c/",
		"manifest=http://m/?a=1,blob=http://b/,catalog=http://c/",
		"manifest=ftp://m/,blob=http://b/,catalog=http://c/",
		"manifest=/relative,blob=http://b/,catalog=http://c/",
		"manifest,blob=http://b/,catalog=http://c/",
	} {
		if _, err := parseUpstreams(bad); err == nil {
			t.Errorf("parseUpstreams(%q): no error", bad)
		}
	}
}
