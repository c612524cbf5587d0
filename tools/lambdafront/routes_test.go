package main

import (
	"strings"
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
		fn, byBehavior := viewerRequest(tc.path, -1, false).origin, behaviorOrigin(tc.path, false)
		if fn != tc.want || byBehavior != tc.byBehavior {
			t.Errorf("viewerRequest(%q) = %s (behaviour: %s), want %s (behaviour: %s)", tc.path, fn, byBehavior, tc.want, tc.byBehavior)
		}
	}
}

// TestRouteIngest: with an ingest service, upload routes (and only they)
// go there, and nothing bound for it is refused for its size.
func TestRouteIngest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path   string
		length int64
		off    decision // no ingest service
		on     decision // with one
	}{
		{"/v2/a/blobs/uploads/", 0, decision{origin: "blob"}, decision{origin: "ingest"}},
		{"/v2/a/blobs/uploads", -1, decision{origin: "blob"}, decision{origin: "ingest"}},
		{"/v2/a/b/blobs/uploads/id", 4 << 20, decision{origin: "blob"}, decision{origin: "ingest"}},
		{"/v2/a/b/blobs/uploads/id", 4<<20 + 1, decision{origin: "blob", refuse: true}, decision{origin: "ingest"}},
		{"/v2/a/blobs/uploads/?digest=x", 1 << 30, decision{origin: "blob", refuse: true}, decision{origin: "ingest"}},
		{"/v2/x/manifests/y/blobs/uploads/", 0, decision{origin: "blob"}, decision{origin: "ingest"}},
		{"/v2/a/blobs/sha256:abc", 0, decision{origin: "blob"}, decision{origin: "blob"}},
		{"/v2/a/blobs/uploads/b/manifests/v1", 5 << 20, decision{origin: "manifest", refuse: true}, decision{origin: "manifest", refuse: true}},
		{"/v2/_skiff/policies/m/blobs/uploads/", 0, decision{origin: "catalog"}, decision{origin: "catalog"}},
		{"/v2/a/blobs/uploads%2F", 0, decision{origin: "blob"}, decision{origin: "ingest"}},
		{"/v2/a/blobs/uploads/x%zz", 5 << 20, decision{origin: "catalog", refuse: true}, decision{origin: "catalog", refuse: true}},
	}
	for _, tc := range tests {
		path, _, _ := strings.Cut(tc.path, "?")
		if got := viewerRequest(path, tc.length, false); got != tc.off {
			t.Errorf("viewerRequest(%q, %d) without ingest = %+v, want %+v", tc.path, tc.length, got, tc.off)
		}
		if got := viewerRequest(path, tc.length, true); got != tc.on {
			t.Errorf("viewerRequest(%q, %d) with ingest = %+v, want %+v", tc.path, tc.length, got, tc.on)
		}
	}
	if got := behaviorOrigin("/v2/a/blobs/uploads/", true); got != "ingest" {
		t.Errorf("the upload behaviour with ingest names %s, want ingest", got)
	}
}
