package stacks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// cloudfrontImport must be the first line of a function that uses the
// cloudfront module (origin selection), and only there.
const cloudfrontImport = "import cf from 'cloudfront';"

// viewerResult is what the viewer-request function did with one event:
// the request it returned and every origin ID it selected, in order.
type viewerResult struct {
	Request struct {
		Headers map[string]map[string]any `json:"headers"`
	} `json:"request"`
	Origins []string `json:"origins"`
}

// viewerEvent is a viewer-request event shaped like CloudFront's.
func viewerEvent(uri string, headers map[string]map[string]any) map[string]any {
	return map[string]any{
		"version": "1.0",
		"context": map[string]any{"distributionDomainName": "d111111abcdef8.cloudfront.net", "eventType": "viewer-request"},
		"viewer":  map[string]any{"ip": "198.51.100.7"},
		"request": map[string]any{"method": "GET", "uri": uri, "querystring": map[string]any{}, "headers": headers, "cookies": map[string]any{}},
	}
}

// requireNode returns the path of node. Node is a superset of
// cloudfront-js-2.0, so running the function under it checks the logic,
// not that CloudFront's runtime accepts the code. Missing, it fails the
// test under SKIFF_REQUIRE_TOOLS=1 and skips it loudly otherwise (jsii
// needs Node anyway, so it is there whenever the stack synthesizes).
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		return node
	}
	msg := "!!! node not found in PATH: the CloudFront Function's code can't be run !!!"
	if os.Getenv("SKIFF_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s (SKIFF_REQUIRE_TOOLS=1 makes a missing tool a failure)", msg)
	}
	fmt.Fprintf(os.Stderr, "\n%s\n!!! SKIPPING %s\n\n", msg, t.Name())
	t.Skipf("%s: SKIPPED, this test did not run", msg)
	return ""
}

// runViewerRequest runs the viewer-request function's code (as
// synthesized) under Node on events, with the cloudfront module replaced
// by an object that records the origin IDs selected.
func runViewerRequest(t *testing.T, code string, events []map[string]any) []viewerResult {
	t.Helper()
	node := requireNode(t)
	body, ok := strings.CutPrefix(code, cloudfrontImport+"\n")
	if !ok {
		t.Fatalf("the function code does not start with %q (origin selection needs it on the first line)", cloudfrontImport)
	}
	const stub = `var selected = [];
var cf = { selectRequestOriginById: function (id) { selected.push(id); } };
`
	const driver = `
var events = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(events.map(function (e) {
  selected = [];
  return { request: handler(e), origins: selected };
})));
`
	in, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "-e", stub+body+driver)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
	var got []viewerResult
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if len(got) != len(events) {
		t.Fatalf("node answered %d events, want %d", len(got), len(events))
	}
	return got
}

// codeOrigins returns the function code's `origins` table: route group
// (function name) -> origin ID.
func codeOrigins(t *testing.T, code string) map[string]string {
	t.Helper()
	table := regexp.MustCompile(`var origins = \{([^}]*)\};`).FindStringSubmatch(code)
	if table == nil {
		t.Fatal("the function code has no `var origins = {...};` table")
	}
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+): '([^']*)'`).FindAllStringSubmatch(table[1], -1) {
		got[m[1]] = m[2]
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
		events[i] = viewerEvent(p, map[string]map[string]any{"host": {"value": "registry.example.com"}})
	}
	for i, r := range runViewerRequest(t, code, events) {
		want := origins[cases[paths[i]]]
		if len(r.Origins) != 1 || r.Origins[0] != want {
			t.Errorf("%s: selected origins %v, want only %s (%s)", paths[i], r.Origins, want, cases[paths[i]])
		}
	}
}
