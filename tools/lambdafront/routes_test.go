package main

import (
	"testing"
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
	tests := []struct{ path, want, byBehavior string }{
		{"/v2/", "catalog", "catalog"},
		{"/v2", "catalog", "catalog"},
		{"/v2/_catalog", "catalog", "catalog"},
		{"/v2/_skiff/token", "catalog", "catalog"},
		{"/v2/_skiff/policies/mirror", "catalog", "catalog"},
		{"/v2/_skiff/policies/mirror/blobs/uploads/", "catalog", "catalog"},
		{"/v2/a/b/tags/list", "catalog", "catalog"},
		{"/v2/a/b/manifests/v1", "manifest", "manifest"},
		{"/v2/a/referrers/sha256:abc", "manifest", "manifest"},
		{"/v2/a/blobs/sha256:abc", "blob", "blob"},
		{"/v2/a/blobs/uploads", "blob", "blob"},
		{"/v2/a/blobs/uploads/", "blob", "blob"},
		{"/v2/a/blobs/uploads/id.1.sig", "blob", "blob"},
		// Repository names holding route keywords: the function reads the
		// route from the end, as internal/httpapi does, where the globs
		// alone misrouted them.
		{"/v2/x/manifests/y/blobs/uploads/", "blob", "blob"},
		{"/v2/x/manifests/y/blobs/sha256:abc", "blob", "manifest"},
		{"/v2/r/referrers/blobs/sha256:abc", "blob", "manifest"},
		{"/v2/a/blobs/uploads/b/manifests/latest", "manifest", "blob"},
		{"/v2/a/blobs/uploads/b/tags/list", "catalog", "blob"},
		{"/v2/uploads/blobs/uploads/manifests/v1", "manifest", "blob"},
		{"/v2/a/blobs/b/manifests/latest", "manifest", "manifest"},
		{"/v2/x/blobs/y/tags/list", "catalog", "catalog"},
		{"/v2/t/tags/list/z/manifests/v1", "manifest", "manifest"},
		{"/v2/t/tags/list/z/blobs/uploads/", "blob", "blob"},
		// The operator API embeds repository names and prefixes.
		{"/v2/_skiff/index/a/manifests/v1", "catalog", "catalog"},
		// The functions route the decoded path.
		{"/v2/a%2Fmanifests/blobs/sha256:abc", "blob", "blob"},
		{"/v2/a/manifests%2Fblobs/sha256:abc", "blob", "catalog"},
		{"/v2/a/%62lobs/sha256:abc", "blob", "catalog"},
		{"/v2/a/blobs/x%zz", "catalog", "blob"},
		// No route: the default.
		{"/v2/a/tags/list/", "catalog", "catalog"},
		{"/token", "catalog", "catalog"},
	}
	for _, tc := range tests {
		fn, byBehavior := route(tc.path)
		if fn != tc.want || byBehavior != tc.byBehavior {
			t.Errorf("route(%q) = %s (behaviour: %s), want %s (behaviour: %s)", tc.path, fn, byBehavior, tc.want, tc.byBehavior)
		}
	}
}
