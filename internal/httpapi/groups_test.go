package httpapi_test

import (
	"testing"

	"github.com/skiff-registry/skiff/internal/httpapi"
)

// TestGroups: a function serving one route group answers only its routes,
// as each Lambda function will.
func TestGroups(t *testing.T) {
	t.Parallel()
	paths := map[string]httpapi.Group{
		"/v2/":                              httpapi.GroupCatalog,
		"/v2/_catalog":                      httpapi.GroupCatalog,
		"/v2/a/b/tags/list":                 httpapi.GroupCatalog,
		"/v2/a/b/manifests/latest":          httpapi.GroupManifest,
		"/v2/a/b/referrers/sha256:" + zeros: httpapi.GroupManifest,
		"/v2/a/b/blobs/sha256:" + zeros:     httpapi.GroupBlob,
		"/v2/a/b/blobs/uploads/abc":         httpapi.GroupBlob,
		// Repository names with route keywords as components: the route
		// is read from the end.
		"/v2/a/blobs/b/manifests/latest":          httpapi.GroupManifest,
		"/v2/x/manifests/y/blobs/sha256:" + zeros: httpapi.GroupBlob,
		"/v2/u/blobs/uploads/v/tags/list":         httpapi.GroupCatalog,
		"/v2/r/referrers/blobs/uploads/abc":       httpapi.GroupBlob,
	}
	// RouteGroup, which the front door routes with, names the group that
	// serves each path.
	for path, owner := range paths {
		if got := httpapi.RouteGroup(path); got != owner {
			t.Errorf("RouteGroup(%q) = %d, want %d", path, got, owner)
		}
	}
	for _, g := range []httpapi.Group{httpapi.GroupCatalog, httpapi.GroupManifest, httpapi.GroupBlob} {
		srv := newServer(t, httpapi.WithGroups(g))
		for path, owner := range paths {
			r := do(t, "GET", srv.URL+path, nil, nil)
			served := r.status != 404 || len(r.codes(t)) == 0 || r.codes(t)[0] != "UNSUPPORTED"
			if served != (owner == g) {
				t.Errorf("group %d, GET %s: status %d %s; served=%v, want %v", g, path, r.status, r.body, served, owner == g)
			}
		}
	}
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
