package integration

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/skiff-registry/skiff/internal/auth"
)

// TestBodyLimits: with no body cap (a server of the harness's own, or a
// front door with the ingest service) a 5 MiB PATCH is taken. Behind a
// pure-Lambda front door (SKIFF_IT_BODY_CAP) a PATCH whose Content-Length
// is over the cap is refused by the front door, a streamed one just over
// it by the function, both with 413 SIZE_INVALID naming the ingest
// service; a streamed 5 MiB one, 6.7 MB as base64, by Lambda's own 6 MB
// payload limit.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	repo := reg.repo("limits/app")
	push := func() http.Header {
		h := http.Header{"Content-Type": {"application/octet-stream"}}
		return reg.authedFor(h, auth.Scope{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.ActionPull, auth.ActionPush}})
	}
	patch := func(n int, streamed bool) apiResponse {
		t.Helper()
		post := send(t, http.MethodPost, reg.url("/v2/"+repo+"/blobs/uploads/"), push(), nil)
		loc := post.header.Get("Location")
		if post.status != http.StatusAccepted || loc == "" {
			t.Fatalf("POST upload session: %s", post)
		}
		if !strings.HasPrefix(loc, "http") {
			loc = reg.url(loc)
		}
		data := make([]byte, n)
		_, _ = rand.Read(data)
		var body io.Reader = bytes.NewReader(data)
		if streamed {
			body = io.MultiReader(body) // no length: chunked transfer encoding
		}
		return send(t, http.MethodPatch, loc, push(), body)
	}
	advice := func(what string, r apiResponse) {
		t.Helper()
		if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), "SIZE_INVALID") || !strings.Contains(string(r.body), "ingest service") {
			t.Errorf("%s: want 413 SIZE_INVALID naming the ingest service, got %s", what, r)
		}
	}
	capped := bodyCap(t)
	if capped == 0 {
		if r := patch(5<<20, false); r.status != http.StatusAccepted {
			t.Errorf("a 5 MiB PATCH: want 202, got %s", r)
		}
		return
	}
	advice("a PATCH declaring one byte over the cap (the front door)", patch(int(capped)+1, false))
	advice("a streamed PATCH of the cap + 256 KiB (the function)", patch(int(capped)+256<<10, true))
	if r := patch(5<<20, true); r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), "Request must be smaller than") {
		t.Errorf("a streamed 5 MiB PATCH: want Lambda's 413 (payload over 6 MB), got %s", r)
	}
}
