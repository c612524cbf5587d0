package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/deploy"
)

// TestIngestOrigin: with -ingest, upload routes stream to the ingest
// service with CloudFront's headers, whatever their size, while every
// other route still goes to its function (and a body over the cap bound
// for one is refused at the door).
func TestIngestOrigin(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, secret, viewerIP, fwdHost, sum string
		n                                            int64
	}
	var (
		mu  sync.Mutex
		got []seen
	)
	ingest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			t.Errorf("ingest read: %v", err)
		}
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.Header.Get(deploy.OriginSecretHeader), r.Header.Get(deploy.ViewerIPHeader),
			r.Header.Get("X-Forwarded-Host"), hex.EncodeToString(h.Sum(nil)), n})
		mu.Unlock()
		w.Header().Set("Location", "/v2/a/blobs/uploads/next")
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(ingest.Close)
	ups, fnGot := upstreams(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	target, err := parseIngest(ingest.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{fwd: newForwarder(ups, ""), ingest: newIngest(target, "the-secret"), originSecret: "the-secret",
		log: slog.New(slog.DiscardHandler), now: time.Now}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)

	// 64 MiB, declared and streamed: far over any Lambda payload.
	const size = 64 << 20
	block := strings.Repeat("skiff ingest ", 1<<10)
	body := func() io.Reader { return io.LimitReader(repeat(block), size) }
	h := sha256.New()
	_, _ = io.Copy(h, body())
	want := hex.EncodeToString(h.Sum(nil))
	for _, streamed := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/v2/team%2Fapp/blobs/uploads/abc", body())
		if !streamed {
			req.ContentLength = size
		}
		req.Host = "registry.example"
		req.Header.Set(deploy.ViewerIPHeader, "203.0.113.9") // a client's own: replaced
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/v2/a/blobs/uploads/next" {
			t.Errorf("streamed %v: %d, Location %q: want the ingest's 202 and Location", streamed, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Other routes: the functions, as before.
	resp, err := http.Get(srv.URL + "/v2/a/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("the ingest service got %d requests, want 2", len(got))
	}
	for _, s := range got {
		if s.method != http.MethodPatch || s.path != "/v2/team%2Fapp/blobs/uploads/abc" || s.n != size || s.sum != want ||
			s.secret != "the-secret" || s.viewerIP != "127.0.0.1" || s.fwdHost != "registry.example" {
			t.Errorf("the ingest service got %+v", s)
		}
	}
	if fns := fnGot(); len(fns) != 1 {
		t.Errorf("the functions got %d requests, want 1 (the manifest GET)", len(fns))
	}
}

func TestParseIngest(t *testing.T) {
	t.Parallel()
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://127.0.0.1:8080/": true,
		"https://x:1": false, "http://x:1/p": false, "http://x:1/?q": false, "x:1": false, "": false, "http://u@x:1": false,
	} {
		if _, err := parseIngest(raw); (err == nil) != ok {
			t.Errorf("parseIngest(%q): %v, want ok %v", raw, err, ok)
		}
	}
}

// repeat reads s over and over.
func repeat(s string) io.Reader { return &repeater{s: s} }

type repeater struct {
	s   string
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}
