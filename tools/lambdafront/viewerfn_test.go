package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skiff-registry/skiff/internal/cffunc"
	"github.com/skiff-registry/skiff/internal/deploy"
)

// The viewer-request CloudFront Function of the stack routes in
// production; route (httpapi.RouteGroup) routes here. These tests run the
// function's JavaScript, infra/stacks/viewer-request.js (which the stack embeds), under
// Node and check that it selects the origin of the function route picks:
// the harness and the distribution must route alike, and both as the
// functions' own router.

// viewerRequestSource returns the function's code, the file the stack
// embeds.
func viewerRequestSource(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "infra", "stacks", "viewer-request.js"))
	if err != nil {
		t.Fatalf("read the CDK stack's viewer-request function: %v", err)
	}
	return string(src)
}

// selectOrigins runs code on a viewer request for each uri and returns,
// per uri, the origin IDs it selected, in order.
func selectOrigins(t *testing.T, code string, uris []string) [][]string {
	t.Helper()
	events := make([]map[string]any, len(uris))
	for i, uri := range uris {
		events[i] = cffunc.Event(uri, map[string]map[string]any{"host": {"value": "registry.example.com"}})
	}
	res, err := cffunc.Run(cffunc.RequireNode(t), code, events)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]string, len(res))
	for i, r := range res {
		out[i] = r.Origins
	}
	return out
}

// codeOrigins returns the function's `origins` table: function -> origin
// ID. It must name each function once.
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
	if want := slices.Sorted(slices.Values(functions)); !slices.Equal(names, want) {
		t.Fatalf("the function's origins table names %v, want %v", names, want)
	}
	return got
}

// checkSameRoute runs the function on uris and compares each selection
// with route's.
func checkSameRoute(t *testing.T, uris []string) {
	t.Helper()
	code := viewerRequestSource(t)
	origins := codeOrigins(t, code)
	for i, sel := range selectOrigins(t, code, uris) {
		fn, _ := route(uris[i])
		if len(sel) != 1 || sel[0] != origins[fn] {
			t.Errorf("%q: the CloudFront Function selects %v, route picks %s (origin %s)", uris[i], sel, fn, origins[fn])
		}
	}
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
	uris := make([]string, len(tests))
	for i, tc := range tests {
		uris[i] = tc.path
		if fn, _ := route(tc.path); fn != tc.want {
			t.Errorf("route(%q) = %s, want %s", tc.path, fn, tc.want)
		}
	}
	checkSameRoute(t, uris)
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
	uris := make([]string, n)
	for i := range uris {
		comps := make([]string, rng.IntN(6))
		for j := range comps {
			comps[j] = parts[rng.IntN(len(parts))]
		}
		uris[i] = starts[rng.IntN(len(starts))] + strings.Join(comps, "/") + ends[rng.IntN(len(ends))]
	}
	checkSameRoute(t, uris)
}

// TestViewerRequestClientAddress: the function puts the viewer's address
// in the header the functions read it from (deploy.ViewerIPHeader), over a
// client's own, as this front door does.
func TestViewerRequestClientAddress(t *testing.T) {
	t.Parallel()
	name := strings.ToLower(deploy.ViewerIPHeader)
	ev := cffunc.Event("/v2/", map[string]map[string]any{name: {"value": "192.0.2.66"}})
	res, err := cffunc.Run(cffunc.RequireNode(t), viewerRequestSource(t), []map[string]any{ev})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Request.Headers[name]; len(got) != 1 || got["value"] != "198.51.100.7" {
		t.Errorf("%s = %v, want only the event's viewer.ip 198.51.100.7", name, got)
	}
}
