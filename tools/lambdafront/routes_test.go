package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatchPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/v2/*/manifests/*", "/v2/a/manifests/latest", true},
		{"/v2/*/manifests/*", "/v2/a/b/c/manifests/sha256:abc", true},
		{"/v2/*/manifests/*", "/v2/a/manifests/", true},
		{"/v2/*/manifests/*", "/v2/a/Manifests/x", false},
		{"/v2/*/manifests/*", "/v2/manifests/x", false},
		{"/v2/*/blobs/uploads", "/v2/a/b/blobs/uploads", true},
		{"/v2/*/blobs/uploads", "/v2/a/b/blobs/uploads/", false},
		{"/v2/*/blobs/uploads/*", "/v2/a/b/blobs/uploads/", true},
		{"/v2/*/tags/list", "/v2/a/tags/list", true},
		{"/v2/*/tags/list", "/v2/a/tags/listing", false},
		{"/v2/?/x", "/v2/a/x", true},
		{"/v2/?/x", "/v2/ab/x", false},
		{"*", "", true},
		{"", "", true},
		{"", "/", false},
	}
	for _, tc := range tests {
		if got := matchPattern(tc.pattern, tc.path); got != tc.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	tests := []struct{ path, want string }{
		{"/v2/", "catalog"},
		{"/v2/_catalog", "catalog"},
		{"/v2/_skiff/token", "catalog"},
		{"/v2/_skiff/policies/mirror", "catalog"},
		{"/v2/a/b/tags/list", "catalog"},
		{"/v2/a/b/manifests/v1", "manifest"},
		{"/v2/a/referrers/sha256:abc", "manifest"},
		{"/v2/a/blobs/sha256:abc", "blob"},
		{"/v2/a/blobs/uploads/", "blob"},
		{"/v2/a/blobs/uploads/id.1.sig", "blob"},
		// Repository names may hold the keywords: order decides, as in
		// internal/httpapi.parseRoute.
		{"/v2/x/manifests/y/blobs/uploads/", "blob"},
		{"/v2/x/blobs/y/tags/list", "catalog"},
		{"/v2/x/blobs/y/manifests/z", "manifest"},
		// The operator API embeds repository names and prefixes.
		{"/v2/_skiff/index/a/manifests/v1", "catalog"},
	}
	for _, tc := range tests {
		if got := route(tc.path); got != tc.want {
			t.Errorf("route(%q) = %s, want %s", tc.path, got, tc.want)
		}
	}
}

// TestBehaviorsMatchStack reads the CDK stack's routes and checks the
// harness routes the same way: a harness that drifted from the stack would
// test another registry than the one deployed.
func TestBehaviorsMatchStack(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "..", "infra", "stacks", "frontdoor.go"))
	if err != nil {
		t.Fatalf("read the CDK stack's routes: %v", err)
	}
	block := regexp.MustCompile(`(?s)var routes = \[\]route\{(.*?)\n\}`).FindSubmatch(src)
	if block == nil {
		t.Fatal("infra/stacks/frontdoor.go: no `var routes = []route{...}` found; update this test with the stack")
	}
	var stack []behavior
	for _, m := range regexp.MustCompile(`\{"([^"]+)",\s*"([^"]+)"\}`).FindAllSubmatch(block[1], -1) {
		stack = append(stack, behavior{pattern: string(m[1]), fn: string(m[2])})
	}
	if diff := cmp.Diff(behaviors, stack, cmp.AllowUnexported(behavior{})); diff != "" {
		t.Errorf("harness behaviours differ from the CDK stack's (-harness +stack):\n%s", diff)
	}
	def := regexp.MustCompile(`const defaultRoute = "([^"]+)"`).FindSubmatch(src)
	if def == nil || string(def[1]) != defaultFunction {
		t.Errorf("the stack's default route is %q, the harness's %q", def, defaultFunction)
	}
}
