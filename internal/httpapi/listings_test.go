package httpapi_test

import (
	"net/http"
	"slices"
	"testing"
)

// TestTagListRepositoryExistence: a repository is known once a manifest
// was pushed to it, and stays known when its tags are gone.
func TestTagListRepositoryExistence(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	tags := func(repo, query string) response {
		t.Helper()
		return do(t, "GET", srv.URL+"/v2/"+repo+"/tags/list"+query, nil, nil)
	}

	config, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("layer")
	pushBlob(t, srv.URL, "known/repo", config)
	pushBlob(t, srv.URL, "known/repo", layer)
	if r := tags("known/repo", ""); r.status != http.StatusNotFound || !slices.Equal(r.codes(t), []string{"NAME_UNKNOWN"}) {
		t.Fatalf("blobs only: got %d %s, want 404 NAME_UNKNOWN", r.status, r.body)
	}
	m := imageManifest(t, config, layer)
	if r := do(t, "PUT", srv.URL+"/v2/known/repo/manifests/v1", m, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); r.status != http.StatusCreated {
		t.Fatalf("put manifest: %d %s", r.status, r.body)
	}

	tests := []struct {
		name, repo, query string
		status            int
		body              string
		codes             []string
	}{
		{"tagged", "known/repo", "", 200, `{"name":"known/repo","tags":["v1"]}`, nil},
		{"past the last tag", "known/repo", "?last=v1", 200, `{"name":"known/repo","tags":[]}`, nil},
		{"unknown repository", "unknown/repo", "", 404, "", []string{"NAME_UNKNOWN"}},
		{"prefix of a repository", "known", "", 404, "", []string{"NAME_UNKNOWN"}},
		{"below a repository", "known/repo/x", "", 404, "", []string{"NAME_UNKNOWN"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tags(tc.repo, tc.query)
			if r.status != tc.status {
				t.Fatalf("status: got %d, want %d (body %s)", r.status, tc.status, r.body)
			}
			if tc.codes != nil {
				if got := r.codes(t); !slices.Equal(got, tc.codes) {
					t.Errorf("codes: got %v, want %v", got, tc.codes)
				}
				return
			}
			if string(r.body) != tc.body {
				t.Errorf("body: got %s, want %s", r.body, tc.body)
			}
		})
	}

	// Deleting the last tag empties the list; the repository stays.
	if r := do(t, "DELETE", srv.URL+"/v2/known/repo/manifests/v1", nil, nil); r.status != http.StatusAccepted {
		t.Fatalf("delete tag: %d %s", r.status, r.body)
	}
	if r := tags("known/repo", ""); r.status != 200 || string(r.body) != `{"name":"known/repo","tags":[]}` {
		t.Errorf("after deleting the tag: got %d %s", r.status, r.body)
	}
}
