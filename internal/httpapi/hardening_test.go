package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/httpapi"
)

// walkCatalog follows a catalog's Link headers from its first page of n
// and returns every name listed and every cursor the links carry.
func walkCatalog(t *testing.T, w *world, authorization string, n int, start string) (names, cursors []string) {
	t.Helper()
	path := "/v2/_catalog?n=" + strconv.Itoa(n)
	if start != "" {
		path += "&last=" + url.QueryEscape(start)
	}
	for range 100 {
		r := w.send(t, "GET", path, nil, nil, authorization)
		if r.status != http.StatusOK {
			t.Fatalf("GET %.200s: %d %s", path, r.status, r.body)
		}
		var page struct{ Repositories []string }
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Repositories) > n {
			t.Errorf("GET %.200s: %d names, more than n", path, len(page.Repositories))
		}
		names = append(names, page.Repositories...)
		link := r.header.Get("Link")
		if link == "" {
			return names, cursors
		}
		if len(page.Repositories) == 0 {
			t.Errorf("GET %.200s: an empty page with a next link %s", path, link)
		}
		target := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(link, ";", 2)[0], "<"), ">")
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		cursors = append(cursors, u.Query().Get("last"))
		path = target
	}
	t.Fatal("the catalog's links did not end")
	return nil, nil
}

// The catalog pages past repositories the caller may not pull: a page's
// names and its next link's cursor are only ones the caller may see, for
// n of any size, and following the links lists exactly the visible ones.
// A cursor longer than any repository name is no error.
func TestCatalogPagingHidesNames(t *testing.T) {
	t.Parallel()
	w := newWorld(t, &syncBuffer{}, &secrets{})
	for _, repo := range []string{"aaa/first", "other/x", "other/y", "team/b", "team/c", "zzz/last"} {
		w.putBlob(t, repo, []byte(`{"other":"config"}`))
		w.putBlob(t, repo, []byte("other layer"))
		w.putManifest(t, repo, "v1", w.fx.otherManifest)
	}
	all := []string{"aaa/first", "other/app", "other/x", "other/y", "public/base", "team/app", "team/b", "team/c", "zzz/last"}
	callers := []struct {
		name          string
		authorization string
		visible       []string
	}{
		{"puller (team/) with Basic", basic("puller", pullerPassword), []string{"public/base", "team/app", "team/b", "team/c"}},
		{"puller (team/) with a token", "Bearer " + w.token(t, "puller", pullerPassword, []string{"registry:catalog:*"}),
			[]string{"public/base", "team/app", "team/b", "team/c"}},
		{"admin", basic("admin", adminPassword), all},
	}
	for _, c := range callers {
		for n := 1; n <= len(all)+1; n++ {
			names, cursors := walkCatalog(t, w, c.authorization, n, "")
			if diff := cmp.Diff(names, c.visible); diff != "" {
				t.Errorf("%s, n=%d: listed (-got +want):\n%s", c.name, n, diff)
			}
			for _, cur := range cursors {
				if !slices.Contains(c.visible, cur) {
					t.Errorf("%s, n=%d: a next link names %q, which the caller may not see", c.name, n, cur)
				}
			}
		}
		// A cursor of any length: no 5xx, and the names after it.
		for _, last := range []string{"team/" + strings.Repeat("z", 3000), "other/" + strings.Repeat("a", 3000)} {
			names, _ := walkCatalog(t, w, c.authorization, 2, last)
			var want []string
			for _, v := range c.visible {
				if v > last {
					want = append(want, v)
				}
			}
			if diff := cmp.Diff(names, want); diff != "" {
				t.Errorf("%s: after a cursor of %d characters (-got +want):\n%s", c.name, len(last), diff)
			}
		}
	}
}

// A token request's scopes are merged when they repeat and capped: the
// token of 9,000 copies of one scope is as small as that of one, and a
// request for more than auth.MaxScopes resources is refused with 400
// before any password check.
func TestTokenScopesBounded(t *testing.T) {
	t.Parallel()
	w := newWorld(t, &syncBuffer{}, &secrets{})
	get := func(scopes []string) response {
		q := url.Values{"service": {"skiff"}, "scope": scopes}
		return w.send(t, "GET", deploy.TokenPath+"?"+q.Encode(), nil, nil, basic("pusher", pusherPassword))
	}
	one := get([]string{"repository:team/app:pull"})
	repeated := make([]string, 9000)
	for i := range repeated {
		repeated[i] = "repository:team/app:pull"
	}
	rep := get(repeated)
	if one.status != http.StatusOK || rep.status != http.StatusOK {
		t.Fatalf("token answers: %d, %d", one.status, rep.status)
	}
	if len(rep.body) > len(one.body)+8 {
		t.Errorf("9,000 copies of a scope: a token answer of %d bytes, one scope's is %d", len(rep.body), len(one.body))
	}
	for _, n := range []int{auth.MaxScopes, auth.MaxScopes + 1, 9000} {
		var scopes []string
		for i := range n {
			scopes = append(scopes, "repository:team/r"+strconv.Itoa(i)+":pull")
		}
		r := get(scopes)
		want := http.StatusOK
		if n > auth.MaxScopes {
			want = http.StatusBadRequest
		}
		if r.status != want {
			t.Errorf("%d distinct scopes: %d %.300s, want %d", n, r.status, r.body, want)
		}
		if want == http.StatusBadRequest && !strings.Contains(string(r.body), strconv.Itoa(auth.MaxScopes)) {
			t.Errorf("%d distinct scopes: the message does not name the limit: %s", n, r.body)
		}
	}
}

// Over HTTP, a session finished by POST then PUT with the body answers
// 404 BLOB_UPLOAD_UNKNOWN to GET and to a second PUT, which stores nothing.
func TestFinishedSessionHTTP(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	post := do(t, "POST", srv.URL+"/v2/spent/app/blobs/uploads/", nil, nil)
	if post.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", post.status, post.body)
	}
	loc := srv.URL + post.header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	first, second := []byte("first blob"), []byte("second blob")
	if r := do(t, "PUT", loc+sep+"digest="+digest.FromBytes(first).String(), first, nil); r.status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", loc, nil, nil); r.status != http.StatusNotFound || !slices.Equal(r.codes(t), []string{"BLOB_UPLOAD_UNKNOWN"}) {
		t.Errorf("GET after the PUT: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", r.status, r.body)
	}
	if r := do(t, "PUT", loc+sep+"digest="+digest.FromBytes(second).String(), second, nil); r.status != http.StatusNotFound {
		t.Errorf("a second PUT: %d %s, want 404", r.status, r.body)
	}
	if r := do(t, "HEAD", srv.URL+"/v2/spent/app/blobs/"+digest.FromBytes(second).String(), nil, nil); r.status != http.StatusNotFound {
		t.Errorf("the second blob: %d, want 404 (not stored)", r.status)
	}
}

// slowRequest sends a PATCH whose body of total bytes arrives in pieces
// of chunk bytes every gap, on a raw connection, and returns the status
// line the server answered with ("" if none) and when.
func slowRequest(t *testing.T, host, path string, total, chunk int, gap time.Duration) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", path, host, total)
	answered := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		answered <- strings.TrimSpace(line)
	}()
	piece := bytes.Repeat([]byte("x"), chunk)
	for sent := 0; sent < total; sent += chunk {
		select {
		case line := <-answered:
			return line, time.Since(start)
		case <-time.After(gap):
		}
		if _, err := conn.Write(piece[:min(chunk, total-sent)]); err != nil {
			break
		}
	}
	select {
	case line := <-answered:
		return line, time.Since(start)
	case <-time.After(5 * time.Second):
		return "", time.Since(start)
	}
}

// A body that sends (almost) nothing is cut after the body timeout with
// 408; a slow but steady one and a fast large one are not.
func TestSlowBodiesCut(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	srv := newServer(t, httpapi.WithBodyTimeout(timeout))
	host := strings.TrimPrefix(srv.URL, "http://")
	session := func() string {
		r := do(t, "POST", srv.URL+"/v2/slow/app/blobs/uploads/", nil, nil)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
		return r.header.Get("Location")
	}
	tests := []struct {
		name       string
		total      int
		chunk      int
		gap        time.Duration
		wantStatus string
		within     time.Duration
	}{
		{"a byte at a time", 1 << 20, 1, 100 * time.Millisecond, "408", 10 * timeout},
		{"nothing at all", 1 << 20, 1, 10 * time.Second, "408", 10 * timeout},
		{"under 1 KiB per timeout, though bytes flow", 1 << 20, 1000, 300 * time.Millisecond, "408", 10 * timeout},
		{"slow but steady: 2 KiB every 100 ms", 40 << 10, 2 << 10, 100 * time.Millisecond, "202", 10 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			line, took := slowRequest(t, host, session(), tc.total, tc.chunk, tc.gap)
			if !strings.Contains(line, " "+tc.wantStatus+" ") {
				t.Errorf("answer %q after %v, want %s", line, took, tc.wantStatus)
			}
			if took > tc.within {
				t.Errorf("answered after %v, want within %v", took, tc.within)
			}
		})
	}
	// A fast upload far longer than the timeout in total is never cut.
	loc := session()
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(big); off += 1 << 20 {
			time.Sleep(10 * time.Millisecond) // 64 pieces: about twice the timeout in all
			if _, err := pw.Write(big[off : off+1<<20]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, err := http.NewRequest("PATCH", srv.URL+loc, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(big))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("a fast 64 MiB PATCH over %v: %d", 640*time.Millisecond, resp.StatusCode)
	}
}

// A session's POST names the largest chunk a capped server (Lambda)
// accepts, OCI-Chunk-Max-Length, at least the minimum it asks for; an
// uncapped server names none.
func TestChunkMaxLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		maxBody int64
		want    string
	}{{0, ""}, {4 << 20, "4194304"}, {100 << 10, "102400"}} {
		srv := newServer(t, httpapi.WithMaxBody(tc.maxBody))
		r := do(t, "POST", srv.URL+"/v2/chunks/app/blobs/uploads/", nil, nil)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
		got := r.header.Get("OCI-Chunk-Max-Length")
		if got != tc.want {
			t.Errorf("max body %d: OCI-Chunk-Max-Length %q, want %q", tc.maxBody, got, tc.want)
		}
		if got != "" {
			lo, _ := strconv.ParseInt(r.header.Get("OCI-Chunk-Min-Length"), 10, 64)
			hi, _ := strconv.ParseInt(got, 10, 64)
			if lo <= 0 || lo > hi {
				t.Errorf("max body %d: chunk lengths %d..%d", tc.maxBody, lo, hi)
			}
		}
	}
}

// TestTooLargeMessage: a streamed body (no Content-Length) over the cap is
// cut with 413 SIZE_INVALID in the deployment's words when it has some,
// and with the limit and chunking advice otherwise.
func TestTooLargeMessage(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{"", "push through the ingest service"} {
		srv := newServer(t, httpapi.WithMaxBody(1<<10), httpapi.WithTooLargeMessage(msg))
		r := do(t, "POST", srv.URL+"/v2/big/app/blobs/uploads/", nil, nil)
		loc := r.header.Get("Location")
		req, _ := http.NewRequest(http.MethodPatch, srv.URL+loc, io.MultiReader(strings.NewReader(strings.Repeat("x", 4<<10))))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := msg
		if want == "" {
			want = "limit of 1024 bytes"
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "SIZE_INVALID") || !strings.Contains(string(body), want) {
			t.Errorf("message %q: %d %s", msg, resp.StatusCode, body)
		}
	}
}
