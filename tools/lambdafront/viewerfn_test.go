package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/skiff-registry/skiff/internal/cffunc"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// The viewer-request CloudFront Function of the stack routes in
// production; route (httpapi.RouteGroup) routes here. These tests run the
// function's JavaScript, infra/stacks/viewer-request.js (which the stack embeds), under
// Node and check that it selects the origin of the function route picks:
// the harness and the distribution must route alike, and both as the
// functions' own router.

// viewerRequestSource returns the function's code, the file the stack
// embeds, with its ingest switch set as the stack sets it.
func viewerRequestSource(t *testing.T, ingest bool) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "infra", "stacks", "viewer-request.js"))
	if err != nil {
		t.Fatalf("read the CDK stack's viewer-request function: %v", err)
	}
	code, err := deploy.ViewerRequestCode(string(src), ingest)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// viewerCase is one request for the function: a path and a declared body
// length (-1: no Content-Length).
type viewerCase struct {
	uri    string
	length int64
}

// runViewer runs code on a viewer request for each case.
func runViewer(t *testing.T, code string, cases []viewerCase) []cffunc.Result {
	t.Helper()
	events := make([]map[string]any, len(cases))
	for i, c := range cases {
		h := map[string]map[string]any{"host": {"value": "registry.example.com"}}
		if c.length >= 0 {
			h["content-length"] = map[string]any{"value": strconv.FormatInt(c.length, 10)}
		}
		events[i] = cffunc.Event(c.uri, h)
	}
	res, err := cffunc.Run(testenv.Tool(t, "node"), code, events)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// codeOrigins returns the function's `origins` table: origin name ->
// origin ID. It must name each origin of deploy.Origins once.
func codeOrigins(t *testing.T, code string) map[string]string {
	t.Helper()
	got, err := cffunc.Origins(code)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for fn := range got {
		names = append(names, fn)
	}
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(deploy.Origins())); !slices.Equal(names, want) {
		t.Fatalf("the function's origins table names %v, want %v", names, want)
	}
	return got
}

// checkSameRoute runs the function, with and without the ingest service,
// on every case and compares what it does with viewerRequest's decision:
// the same origin, or the same 413 with the registry's SIZE_INVALID
// error and deploy.TooLargeAdvice's words.
func checkSameRoute(t *testing.T, cases []viewerCase) {
	t.Helper()
	for _, ingest := range []bool{false, true} {
		code := viewerRequestSource(t, ingest)
		origins := codeOrigins(t, code)
		for i, res := range runViewer(t, code, cases) {
			c := cases[i]
			want := viewerRequest(c.uri, c.length, ingest)
			if !want.refuse {
				if res.Response != nil || len(res.Origins) != 1 || res.Origins[0] != origins[want.origin] {
					t.Errorf("%q (length %d, ingest %v): the CloudFront Function selects %v (response %v), the front door %s (origin %s)",
						c.uri, c.length, ingest, res.Origins, res.Response != nil, want.origin, origins[want.origin])
				}
				continue
			}
			if res.Response == nil || len(res.Origins) != 0 {
				t.Errorf("%q (length %d, ingest %v): the CloudFront Function selects %v, the front door refuses it (413)", c.uri, c.length, ingest, res.Origins)
				continue
			}
			checkTooLarge(t, res.Response)
		}
	}
}

// checkTooLarge checks the function's own answer to a body over the cap
// against what the front door (and so the Go side) sends.
func checkTooLarge(t *testing.T, r *cffunc.Response) {
	t.Helper()
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(r.Body.Data), &env); err != nil || r.Body.Encoding != "text" {
		t.Fatalf("413 body %q (encoding %q): %v", r.Body.Data, r.Body.Encoding, err)
	}
	want := deploy.TooLargeAdvice(deploy.LambdaMaxBody)
	if r.StatusCode != 413 || len(env.Errors) != 1 || env.Errors[0].Code != "SIZE_INVALID" || env.Errors[0].Message != want {
		t.Errorf("the function answers %d %+v, want 413 SIZE_INVALID %q", r.StatusCode, env.Errors, want)
	}
	if ct := r.Headers["content-type"]["value"]; ct != "application/json" {
		t.Errorf("413 content-type %v, want application/json", ct)
	}
	var front bytes.Buffer
	tooLargeEnvelope(&front)
	if !bytes.Equal(front.Bytes(), []byte(r.Body.Data)) {
		t.Errorf("the front door's 413 body\n%s\ndiffers from the function's\n%s", front.Bytes(), r.Body.Data)
	}
}

// paths turns paths into cases without a body.
func paths(uris []string) []viewerCase {
	cases := make([]viewerCase, len(uris))
	for i, u := range uris {
		cases[i] = viewerCase{uri: u, length: -1}
	}
	return cases
}

// TestViewerRequestFunction: on paths chosen to be hard, the function
// selects the origin of the function route picks, and that is the one
// whose route group serves the path (want, written out).
func TestViewerRequestFunction(t *testing.T) {
	t.Parallel()
	tests := []struct{ path, want string }{
		{"/v2/", "catalog"},
		{"/v2", "catalog"},
		{"/", "catalog"},
		{"", "catalog"},
		{"/v2/_catalog", "catalog"},
		{"/v2/_catalog/", "catalog"},
		{"/v2/_skiff", "catalog"},
		{"/v2/_skiff/token", "catalog"},
		{"/v2/_skiff/policies/mirror/blobs/uploads/", "catalog"},
		{"/v2/_skiff/policies/mirror/blobs/sha256:01", "catalog"},
		{"/v2/_skiff/index/a/manifests/v1", "catalog"},
		{"/v2/_skiffy/manifests/v1", "manifest"}, // not the operator root
		{"/v2/a/tags/list", "catalog"},
		{"/v2/a/manifests/latest", "manifest"},
		{"/v2/a/referrers/sha256:01", "manifest"},
		{"/v2/a/blobs/sha256:01", "blob"},
		{"/v2/a/blobs/uploads", "blob"},
		{"/v2/a/blobs/uploads/", "blob"},
		{"/v2/a/blobs/uploads/0123.1700000000.a", "blob"},
		// Repository names with keyword components.
		{"/v2/a/blobs/b/manifests/latest", "manifest"},
		{"/v2/a/blobs/b/blobs/sha256:01", "blob"},
		{"/v2/x/manifests/y/blobs/sha256:01", "blob"},
		{"/v2/x/manifests/y/tags/list", "catalog"},
		{"/v2/t/tags/list/z/manifests/v1", "manifest"},
		{"/v2/t/tags/list/z/blobs/uploads/", "blob"},
		{"/v2/uploads/blobs/uploads/blobs/uploads/", "blob"},
		{"/v2/uploads/blobs/uploads/manifests/v1", "manifest"},
		{"/v2/referrers/referrers/referrers/sha256:01", "manifest"},
		{"/v2/referrers/referrers/blobs/sha256:01", "blob"},
		{"/v2/_catalog/manifests/v1", "manifest"}, // an invalid name: the manifest function refuses it
		{"/v2/a/_catalog", "catalog"},             // no route
		// Trailing slashes and empty segments, as parseRoute splits them.
		{"/v2/a/manifests/", "manifest"},
		{"/v2/a/tags/list/", "catalog"},
		{"/v2/a/blobs/", "blob"},
		{"/v2//manifests/v1", "manifest"},
		{"/v2/manifests/v1", "catalog"},
		{"/v2/blobs/uploads/", "catalog"},
		{"/v2/a/blobs/uploads//", "catalog"},
		// Escapes: the functions route the decoded path.
		{"/v2/a%2Fb/manifests/v1", "manifest"},
		{"/v2/a/manifests%2Fblobs/sha256:01", "blob"},
		{"/v2/a/%62lobs/sha256:01", "blob"},
		{"/v2/a/%6D%61nifests/v1", "manifest"},
		{"/v2/a/blobs%2fuploads%2F", "blob"},
		{"/v2/%5Fskiff/policies", "catalog"},
		{"/v2/caf%C3%A9/manifests/v1", "manifest"},
		{"/v2/a/manifests/%E2%82%AC", "manifest"},
		{"/v2/a/manifests/%ff", "manifest"}, // not UTF-8: still one byte, not a slash
		{"/v2/a/blobs/x%zz", "catalog"},     // malformed: every function refuses it
		{"/v2/a/blobs/x%", "catalog"},
		{"/v2/a/blobs/x%4", "catalog"},
		{"/v2/a/blobs/x%252F", "blob"}, // decoded once: %2F, not a slash
	}
	// The body cap, at its edge, on each kind of route.
	t.Run("cap", func(t *testing.T) {
		var cases []viewerCase
		for _, uri := range []string{"/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/id", "/v2/a/manifests/v1", "/v2/_skiff/token", "/v2/a/blobs/sha256:01"} {
			for _, n := range []int64{-1, 0, deploy.LambdaMaxBody, deploy.LambdaMaxBody + 1, 1 << 30} {
				cases = append(cases, viewerCase{uri, n})
			}
		}
		checkSameRoute(t, cases)
	})
	uris := make([]string, len(tests))
	for i, tc := range tests {
		uris[i] = tc.path
		if fn := viewerRequest(tc.path, -1, false).origin; fn != tc.want {
			t.Errorf("viewerRequest(%q) = %s, want %s", tc.path, fn, tc.want)
		}
	}
	checkSameRoute(t, paths(uris))
}

// TestViewerRequestFunctionRandom cross-checks the function and route on
// paths built at random from route keywords, plain components, escapes
// and route endings. The seed is fixed so a failure reproduces.
func TestViewerRequestFunctionRandom(t *testing.T) {
	t.Parallel()
	parts := []string{
		"blobs", "uploads", "manifests", "referrers", "tags", "list", "_catalog", "_skiff", "v2", "",
		"a", "b-c", "x.y", "d__e", "0", "Blobs", "manifest", "%2F", "%2f", "%62lobs", "manifests%2Fblobs",
		"%zz", "%", "%E2%82%AC", "%ff", "sha256:0123", "latest",
	}
	ends := []string{
		"", "/", "/manifests/latest", "/manifests/", "/referrers/sha256:01", "/blobs/sha256:01", "/blobs/",
		"/blobs/uploads", "/blobs/uploads/", "/blobs/uploads/abc", "/tags/list", "/tags/list/", "/_catalog",
	}
	starts := []string{"/v2/", "/v2/", "/v2/", "/v2", "/", "/v2/_skiff/", "/v3/"}
	rng := rand.New(rand.NewPCG(20260101, 1))
	const n = 3000
	// Declared body lengths around the functions' cap.
	lengths := []int64{-1, -1, 0, 1, deploy.LambdaMaxBody - 1, deploy.LambdaMaxBody, deploy.LambdaMaxBody + 1, 6 << 20, 1 << 40}
	cases := make([]viewerCase, n)
	for i := range cases {
		comps := make([]string, rng.IntN(6))
		for j := range comps {
			comps[j] = parts[rng.IntN(len(parts))]
		}
		cases[i] = viewerCase{
			uri:    starts[rng.IntN(len(starts))] + strings.Join(comps, "/") + ends[rng.IntN(len(ends))],
			length: lengths[rng.IntN(len(lengths))],
		}
	}
	checkSameRoute(t, cases)
}

// TestViewerRequestClientAddress: the function puts the viewer's address
// in the header the functions read it from (deploy.ViewerIPHeader), over a
// client's own, as this front door does.
func TestViewerRequestClientAddress(t *testing.T) {
	t.Parallel()
	name := strings.ToLower(deploy.ViewerIPHeader)
	ev := cffunc.Event("/v2/", map[string]map[string]any{name: {"value": "192.0.2.66"}})
	res, err := cffunc.Run(testenv.Tool(t, "node"), viewerRequestSource(t, false), []map[string]any{ev})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Request.Headers[name]; len(got) != 1 || got["value"] != "198.51.100.7" {
		t.Errorf("%s = %v, want only the event's viewer.ip 198.51.100.7", name, got)
	}
}
