package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/auth"
)

// basicHeader is an Authorization header with Basic credentials.
func basicHeader(user, password string) http.Header {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, password)
	return http.Header{"Authorization": {req.Header.Get("Authorization")}}
}

// TestFailedLoginsConcurrent: 100 logins at once for one user, 99 with
// wrong passwords and the right one last. The server reserves each
// attempt before the password check, so at most the limit (10 per
// minute) are checked, whatever the concurrency: every other answer is
// 429 TOOMANYREQUESTS with a Retry-After, the right one among them unless
// it was checked before the limit was reached, and once it is, the right
// password is refused too. A checked wrong password answers 401, a checked
// right one 200, so the answers count the checks.
func TestFailedLoginsConcurrent(t *testing.T) {
	t.Parallel()
	requireOwnServer(t, "it uses up the login limit of its source address, which every test shares on an external registry")
	victim := &authUser{name: "victim", password: newPassword(), grants: []authGrant{{"limits/", "pull"}}}
	reg := startAuthRegistry(t, []*authUser{victim})
	const logins, limit = 100, 10
	statuses := make([]int, logins)
	retryAfter := make([]string, logins)
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			pw := "wrong-" + strconv.Itoa(i) + "-" + victim.password
			if i == logins-1 {
				pw = victim.password
			}
			resp, err := trySend(http.MethodGet, reg.url("/v2/"), basicHeader(victim.name, pw), nil)
			if err != nil {
				t.Errorf("login %d: %v", i, err)
				return
			}
			statuses[i], retryAfter[i] = resp.status, resp.header.Get("Retry-After")
		})
	}
	wg.Wait()
	count := map[int]int{}
	for i, s := range statuses {
		count[s]++
		if s == http.StatusTooManyRequests {
			if secs, err := strconv.Atoi(retryAfter[i]); err != nil || secs < 1 || secs > 61 {
				t.Errorf("login %d: 429 with Retry-After %q, want 1 to 61 seconds", i, retryAfter[i])
			}
		}
	}
	checked := count[http.StatusUnauthorized] + count[http.StatusOK]
	if checked > limit || checked+count[http.StatusTooManyRequests] != logins {
		t.Errorf("answers %v: want at most %d checked (401 or 200), the rest 429", count, limit)
	}
	if s := statuses[logins-1]; s != http.StatusOK && s != http.StatusTooManyRequests {
		t.Errorf("the right password in the flood: %d, want 200 (checked before the limit) or 429", s)
	}
	// The limit is reached: the right password is refused now.
	if resp := send(t, http.MethodGet, reg.url("/v2/"), basicHeader(victim.name, victim.password), nil); resp.status != http.StatusTooManyRequests {
		t.Errorf("the right password after the flood: %s, want 429", resp)
	}
}

// TestImpossibleNamesAndCursors: input the store could not hold as a key
// (DynamoDB: 1,024 bytes) is refused or bounded before the store, with a
// client error, never a 500: a Basic user name of 1,100 characters gets 401
// on /v2/ and on the token endpoint, and is not logged; listing cursors of
// 3,000 characters list what follows them.
func TestImpossibleNamesAndCursors(t *testing.T) {
	t.Parallel()
	requireOwnServer(t, "it reads the server's log")
	reader := &authUser{name: "reader", password: newPassword(), grants: []authGrant{{"names/", "pull,push"}}}
	reg := startAuthRegistry(t, []*authUser{reader})
	longName := strings.Repeat("n", 1100)
	for _, path := range []string{"/v2/", "/v2/_skiff/token?service=skiff&scope=repository:names/app:pull"} {
		resp := send(t, http.MethodGet, reg.url(path), basicHeader(longName, "some password here"), nil)
		if resp.status != http.StatusUnauthorized || !strings.Contains(string(resp.body), "UNAUTHORIZED") {
			t.Errorf("GET %s as a 1,100-character user: %s, want 401 UNAUTHORIZED", path, resp)
		}
	}
	for _, path := range []string{
		"/v2/names/app/tags/list?last=" + strings.Repeat("t", 3000),
		"/v2/_catalog?n=5&last=" + strings.Repeat("c", 3000),
	} {
		h := reg.authedFor(nil, auth.Scope{Type: auth.TypeRegistry, Name: auth.Catalog, Actions: []string{"*"}})
		if strings.Contains(path, "tags") {
			h = reg.authed(nil, reg.repo("names/app"))
		}
		resp := send(t, http.MethodGet, reg.url(path), h, nil)
		if resp.status >= 500 {
			t.Errorf("GET %.60s...: %s, want no 5xx", path, resp)
		}
	}
	if strings.Contains(reg.log.String(), longName[:200]) {
		t.Error("the server log holds the user name typed")
	}
}

// TestTokenEndsWithCredential: a token stops working when its user's
// password changes, when the user is deleted, and when a user of the same
// name is created again (with the same password): at once through the
// server's own operator API, and within auth.CredTTL (10 s) when another
// process changes the store (skiff user passwd --table, aws only: the
// embedded store is the server's alone while it runs).
func TestTokenEndsWithCredential(t *testing.T) {
	t.Parallel()
	requireOwnServer(t, "it runs skiff user against the server's own table")
	alice := &authUser{name: "alice", password: newPassword(), grants: []authGrant{{"cred/", "pull,push"}}}
	reg := startAuthRegistry(t, []*authUser{alice}, "--operator-api")
	repo := reg.repo("cred/app")
	scope := auth.Scope{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.ActionPull, auth.ActionPush}}
	tokens := &tokenCache{host: reg.host}
	tokenOf := func(password string) string {
		t.Helper()
		tok, _, err := tokens.fetch(alice.name, password, scope)
		if err != nil {
			t.Fatalf("token for alice: %v", err)
		}
		return tok
	}
	// A push needs a token: POST a session and cancel it.
	works := func(tok string) int {
		resp := send(t, http.MethodPost, reg.url("/v2/"+repo+"/blobs/uploads/"), http.Header{"Authorization": {"Bearer " + tok}}, nil)
		return resp.status
	}
	admin := func(method, path string, body string) {
		t.Helper()
		h := reg.authedFor(http.Header{"Content-Type": {"application/json"}}, auth.Scope{Type: auth.TypeRegistry, Name: auth.Admin, Actions: []string{"*"}})
		resp := send(t, method, reg.url("/v2/_skiff/users/"+alice.name+path), h, strings.NewReader(body))
		if resp.status >= 300 {
			t.Fatalf("%s /v2/_skiff/users/alice%s: %s", method, path, resp)
		}
	}
	refusedAtOnce := func(what, tok string) {
		t.Helper()
		if s := works(tok); s != http.StatusUnauthorized {
			t.Errorf("after %s, the old token: %d, want 401", what, s)
		}
	}

	tok := tokenOf(alice.password)
	if s := works(tok); s != http.StatusAccepted {
		t.Fatalf("a fresh token: %d, want 202", s)
	}
	pw2 := newPassword()
	admin(http.MethodPut, "/password", `{"password":"`+pw2+`"}`)
	refusedAtOnce("a password change", tok)
	tok2 := tokenOf(pw2)
	if s := works(tok2); s != http.StatusAccepted {
		t.Fatalf("a token after the password change: %d, want 202", s)
	}
	admin(http.MethodDelete, "", "")
	refusedAtOnce("the user's deletion", tok2)
	admin(http.MethodPut, "", `{"password":"`+pw2+`"}`)
	admin(http.MethodPost, "/grants", `{"prefix":"`+alice.grants[0].prefix+`","actions":["pull","push"]}`)
	refusedAtOnce("the user's re-creation with the same password and grants", tok2)
	tok3 := tokenOf(pw2)
	if s := works(tok3); s != http.StatusAccepted {
		t.Fatalf("a token of the new user: %d, want 202", s)
	}

	if backend != backendAWS {
		return
	}
	// Another process changes the password: the server believes its cached
	// stamp for at most auth.CredTTL.
	pw3 := newPassword()
	reg.skiffCommand(pw3+"\n", "user", "passwd", alice.name, "--password-stdin", "--table", reg.table)
	changed := time.Now()
	for works(tok3) != http.StatusUnauthorized {
		if time.Since(changed) > auth.CredTTL+2*time.Second {
			t.Fatalf("the old token still works %v after skiff user passwd --table", time.Since(changed))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the old token was refused %v after the change by another process", time.Since(changed).Round(time.Millisecond))
}

// TestInterruptedPatchResumesHTTP: a client's connection drops in the
// middle of a PATCH body; right after, GET on the session reports an
// offset and a PATCH from there succeeds at once (no 416 "another request
// is writing"), then the PUT completes the blob with the right bytes.
func TestInterruptedPatchResumesHTTP(t *testing.T) {
	t.Parallel()
	requireOwnServer(t, "a front door buffers whole request bodies, so a cut body never reaches the functions")
	pusher := &authUser{name: "pusher", password: newPassword(), grants: []authGrant{{"cut/", "pull,push"}}}
	reg := startAuthRegistry(t, []*authUser{pusher})
	repo := reg.repo("cut/app")
	push := func(h http.Header) http.Header {
		return reg.authedFor(h, auth.Scope{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.ActionPull, auth.ActionPush}})
	}
	data := make([]byte, 24<<20)
	_, _ = rand.Read(data)
	post := send(t, http.MethodPost, reg.url("/v2/"+repo+"/blobs/uploads/"), push(nil), nil)
	if post.status != http.StatusAccepted {
		t.Fatalf("POST: %s", post)
	}
	loc := post.header.Get("Location")

	// The cut: headers for the whole body, 12 MiB of it, then close.
	conn, err := net.Dial("tcp", reg.host)
	if err != nil {
		t.Fatal(err)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nContent-Range: 0-%d\r\n",
		loc, reg.host, len(data), len(data)-1)
	for k, vs := range push(nil) {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(data[:12<<20]); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	// At once: the status, and the rest from the offset it reports. The
	// server may still be finishing the cut request, so a 416 "another
	// request is writing" is retried for at most 5 s, far less than the
	// claim's one-minute lease.
	deadline := time.Now().Add(5 * time.Second)
	var offset int64
	for {
		st := send(t, http.MethodGet, reg.url(loc), push(nil), nil)
		if st.status != http.StatusNoContent {
			t.Fatalf("GET the session: %s", st)
		}
		var end int64
		if _, err := fmt.Sscanf(st.header.Get("Range"), "0-%d", &end); err != nil {
			t.Fatalf("Range %q: %v", st.header.Get("Range"), err)
		}
		offset = end + 1
		if st.header.Get("Range") == "0-0" {
			offset = 0 // nothing stored (the spec's Range for an empty session)
		}
		h := push(http.Header{"Content-Type": {"application/octet-stream"}, "Content-Range": {fmt.Sprintf("%d-%d", offset, len(data)-1)}})
		resp := send(t, http.MethodPatch, reg.url(loc), h, bytes.NewReader(data[offset:]))
		if resp.status == http.StatusAccepted {
			break
		}
		if resp.status != http.StatusRequestedRangeNotSatisfiable || time.Now().After(deadline) {
			t.Fatalf("PATCH from %d right after the cut: %s", offset, resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d := digest.FromBytes(data)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	if resp := send(t, http.MethodPut, reg.url(loc+sep+"digest="+d.String()), push(nil), nil); resp.status != http.StatusCreated {
		t.Fatalf("PUT: %s", resp)
	}
	t.Logf("resumed at %d of %d bytes sent before the cut", offset, 12<<20)
}

// TestSlowBodyCut: `skiff serve --body-timeout` cuts an authenticated PATCH
// whose body sends a byte every half second (less than 1 KiB per timeout)
// with 408, instead of holding the connection open.
func TestSlowBodyCut(t *testing.T) {
	t.Parallel()
	requireOwnServer(t, "it sets the server's --body-timeout")
	pusher := &authUser{name: "pusher", password: newPassword(), grants: []authGrant{{"slow/", "pull,push"}}}
	reg := startAuthRegistry(t, []*authUser{pusher}, "--body-timeout", "2s")
	repo := reg.repo("slow/app")
	h := reg.authedFor(nil, auth.Scope{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.ActionPull, auth.ActionPush}})
	post := send(t, http.MethodPost, reg.url("/v2/"+repo+"/blobs/uploads/"), h, nil)
	if post.status != http.StatusAccepted {
		t.Fatalf("POST: %s", post)
	}
	conn, err := net.Dial("tcp", reg.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: 100000\r\n\r\n", post.header.Get("Location"), reg.host, h.Get("Authorization"))
	answered := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		answered <- strings.TrimSpace(line)
	}()
	for {
		select {
		case line := <-answered:
			if !strings.Contains(line, " 408 ") {
				t.Errorf("answer %q, want 408", line)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("cut after %v, want about 2 s", d)
			}
			return
		case <-time.After(500 * time.Millisecond):
			if time.Since(start) > 15*time.Second {
				t.Fatal("the trickling PATCH is still open after 15 s")
			}
			_, _ = conn.Write([]byte("x"))
		}
	}
}
