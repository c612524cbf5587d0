package stacks

import (
	"sort"
	"testing"

	"github.com/skiff-registry/skiff/internal/cffunc"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// runViewerRequest runs the viewer-request function's code (as
// synthesized) under Node on events (internal/cffunc).
func runViewerRequest(t *testing.T, code string, events []map[string]any) []cffunc.Result {
	t.Helper()
	got, err := cffunc.Run(testenv.Tool(t, "node"), code, events)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// codeOrigins returns the function code's `origins` table: route group
// (function name) -> origin ID.
func codeOrigins(t *testing.T, code string) map[string]string {
	t.Helper()
	got, err := cffunc.Origins(code)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// frontDoorRoutes are paths and the function whose route group serves
// them in internal/httpapi (parseRoute). tools/lambdafront checks the same
// code against httpapi itself, over more and random paths.
var frontDoorRoutes = map[string]string{
	"/v2":                                   "catalog",
	"/v2/":                                  "catalog",
	"/v2/_catalog":                          "catalog",
	"/v2/_skiff/token":                      "catalog",
	"/v2/_skiff/policies/mirror/blobs/x":    "catalog",
	"/v2/_skiff/index/team/manifests/app/1": "catalog",
	"/v2/library/alpine/tags/list":          "catalog",
	"/v2/a/manifests/latest":                "manifest",
	"/v2/a/referrers/sha256:01":             "manifest",
	"/v2/a/blobs/sha256:01":                 "blob",
	"/v2/a/blobs/uploads":                   "blob",
	"/v2/a/blobs/uploads/":                  "blob",
	"/v2/a/blobs/uploads/0123.1700000000.a": "blob",
	"/v2/a/tags/list/":                      "catalog", // no route
	"/token":                                "catalog", // no route
	"/v2/a%2Fb/manifests/v1":                "manifest",
	"/v2/a/%62lobs/sha256:01":               "blob",    // %62 is b: the functions decode it
	"/v2/a/manifests%2Fblobs/sha256:01":     "blob",    // %2F is a slash to them
	"/v2/a/blobs/x%zz":                      "catalog", // malformed: refused by every function
}

// viewerRoutingCases are frontDoorRoutes plus the paths the behaviours'
// globs alone send elsewhere (TestBehavioursKnownLimits): the function
// must route them as httpapi does.
func viewerRoutingCases() map[string]string {
	cases := map[string]string{}
	for p, fn := range frontDoorRoutes {
		cases[p] = fn
	}
	for p, tc := range globMisroutes {
		cases[p] = tc.httpapi
	}
	return cases
}

// checkViewerRouting runs code on every routing case and checks the one
// origin it selects.
func checkViewerRouting(t *testing.T, code string) {
	t.Helper()
	origins := codeOrigins(t, code)
	cases := viewerRoutingCases()
	paths := make([]string, 0, len(cases))
	for p := range cases {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	events := make([]map[string]any, len(paths))
	for i, p := range paths {
		events[i] = cffunc.Event(p, map[string]map[string]any{"host": {"value": "registry.example.com"}})
	}
	for i, r := range runViewerRequest(t, code, events) {
		want := origins[cases[paths[i]]]
		if len(r.Origins) != 1 || r.Origins[0] != want {
			t.Errorf("%s: selected origins %v, want only %s (%s)", paths[i], r.Origins, want, cases[paths[i]])
		}
	}
}
