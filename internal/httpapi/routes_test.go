package httpapi

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/internal/deploy"
)

func TestParseRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want route
		ok   bool
	}{
		{"/v2/", route{kind: routeBase, group: GroupCatalog}, true},
		{"/v2", route{kind: routeBase, group: GroupCatalog}, true},
		{"/v2/_catalog", route{kind: routeCatalog, group: GroupCatalog}, true},
		{"/v2/a/b/tags/list", route{kind: routeTags, repo: "a/b", group: GroupCatalog}, true},
		{"/v2/a/manifests/latest", route{kind: routeManifest, repo: "a", arg: "latest", group: GroupManifest}, true},
		{"/v2/a/blobs/manifests/latest", route{kind: routeManifest, repo: "a/blobs", arg: "latest", group: GroupManifest}, true},
		{"/v2/x/manifests/blobs/sha256:ab", route{kind: routeBlob, repo: "x/manifests", arg: "sha256:ab", group: GroupBlob}, true},
		{"/v2/a/b/blobs/uploads/", route{kind: routeUploads, repo: "a/b", group: GroupBlob}, true},
		{"/v2/a/b/blobs/uploads", route{kind: routeUploads, repo: "a/b", group: GroupBlob}, true},
		{"/v2/a/b/blobs/uploads/abc", route{kind: routeUpload, repo: "a/b", arg: "abc", group: GroupBlob}, true},
		{"/v2/a/referrers/sha256:ab", route{kind: routeReferrers, repo: "a", arg: "sha256:ab", group: GroupManifest}, true},
		{"/v2/a/tags/list/extra", route{}, false},
		{"/v3/a/manifests/x", route{}, false},
		{"/v2/manifests/x", route{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			got, ok := parseRoute(tc.path)
			if ok != tc.ok {
				t.Fatalf("ok: got %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(got, tc.want, cmp.AllowUnexported(route{})); diff != "" {
				t.Errorf("route (-got +want):\n%s", diff)
			}
		})
	}
}

func TestRouteGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want Group
	}{
		{"/v2", GroupCatalog},
		{"/v2/", GroupCatalog},
		{"/v2/_catalog", GroupCatalog},
		{deploy.TokenPath, GroupCatalog},
		{"/v2/_skiff", GroupCatalog},
		{"/v2/_skiff/policies/mirror/blobs/uploads/", GroupCatalog},
		{"/v2/_skiff/index/a/manifests/v1", GroupCatalog},
		{"/v2/a/tags/list", GroupCatalog},
		{"/v2/a/manifests/v1", GroupManifest},
		{"/v2/a/referrers/sha256:ab", GroupManifest},
		{"/v2/a/blobs/sha256:ab", GroupBlob},
		{"/v2/a/blobs/uploads", GroupBlob},
		{"/v2/a/blobs/uploads/", GroupBlob},
		{"/v2/a/blobs/uploads/id", GroupBlob},
		// Names with keyword components: only the last segments count.
		{"/v2/a/blobs/b/manifests/latest", GroupManifest},
		{"/v2/a/blobs/uploads/b/manifests/latest", GroupManifest},
		{"/v2/x/manifests/y/blobs/sha256:ab", GroupBlob},
		{"/v2/t/tags/list/z/tags/list", GroupCatalog},
		{"/v2/uploads/blobs/uploads/blobs/uploads/", GroupBlob},
		{"/v2/referrers/referrers/referrers/sha256:ab", GroupManifest},
		{"/v2/_skiffx/manifests/v1", GroupManifest}, // not the operator root; the name is refused later
		// No route: the front door's default.
		{"/", 0},
		{"/v2/a", 0},
		{"/v2/a/tags/list/", 0},
		{"/v2/manifests/v1", 0},
		{"/v3/a/manifests/v1", 0},
	}
	for _, tc := range tests {
		if got := RouteGroup(tc.path); got != tc.want {
			t.Errorf("RouteGroup(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
}

func TestIsUploadRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want bool
	}{
		{"/v2/a/blobs/uploads", true},
		{"/v2/a/blobs/uploads/", true},
		{"/v2/a/b/blobs/uploads/0123.1700000000.a", true},
		{"/v2/uploads/blobs/uploads/blobs/uploads/", true},
		{"/v2/a/blobs/sha256:ab", false},
		{"/v2/a/blobs/uploads/b/manifests/latest", false},
		{"/v2/a/blobs/uploads/b/blobs/sha256:ab", false},
		{"/v2/_skiff/policies/mirror/blobs/uploads/", false},
		{"/v2/a/manifests/v1", false},
		{"/v2/blobs/uploads/", false},
		{"/", false},
	}
	for _, tc := range tests {
		if got := IsUploadRoute(tc.path); got != tc.want {
			t.Errorf("IsUploadRoute(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"0-0", 0, 0, true},
		{"0-1023", 0, 1023, true},
		{"bytes 10-19/100", 10, 19, true},
		{"bytes 10-19/*", 10, 19, true},
		{"bytes=5-6", 5, 6, true},
		{"5-4", 0, 0, false},
		{"-1-4", 0, 0, false},
		{"abc", 0, 0, false},
		{"1-", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			s, e, err := parseContentRange(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err: got %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (s != tc.start || e != tc.end) {
				t.Errorf("got %d-%d, want %d-%d", s, e, tc.start, tc.end)
			}
		})
	}
}

func TestParseByteRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in             string
		size           int64
		offset, length int64
		ok             bool
	}{
		{"bytes=0-9", 100, 0, 10, true},
		{"bytes=90-", 100, 90, 10, true},
		{"bytes=90-200", 100, 90, 10, true},
		{"bytes=-10", 100, 90, 10, true},
		{"bytes=-200", 100, 0, 100, true},
		{"bytes=100-", 100, 0, 0, false},
		{"bytes=5-4", 100, 0, 0, false},
		{"bytes=0-1,5-6", 100, 0, 0, false},
		{"items=0-1", 100, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			o, l, ok := parseByteRange(tc.in, tc.size)
			if ok != tc.ok || (ok && (o != tc.offset || l != tc.length)) {
				t.Errorf("got %d,%d,%v want %d,%d,%v", o, l, ok, tc.offset, tc.length, tc.ok)
			}
		})
	}
}

// FuzzParseContentRange checks the parser never panics and that what it
// accepts formats back to an equivalent range.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-0", "0-1023", "bytes 1-2/3", "bytes=4-5", "x", "-", "9223372036854775807-9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseContentRange(s)
		if err != nil {
			return
		}
		if start < 0 || end < start {
			t.Fatalf("accepted invalid range %q as %d-%d", s, start, end)
		}
		s2, e2, err := parseContentRange(fmt.Sprintf("%d-%d", start, end))
		if err != nil || s2 != start || e2 != end {
			t.Fatalf("round trip of %q failed", s)
		}
	})
}
