package main

import (
	"strings"
	"testing"
)

// TestMirrorRuleCLI: a rule added, read, listed with its last run, its
// history, deleted, through the operator API; bad rules are refused
// before any request.
func TestMirrorRuleCLI(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true)
	e := env("SKIFF_REGISTRY", srv.URL, "USER", "ops")
	out, errOut, err := cli(t, e, "mirror", "rule", "add", "alpine", "--source", "up.example/library/alpine", "--tags", `3\.2[0-9]`,
		"--target", "mirror/alpine", "--platforms", "linux/amd64", "--referrers", "--credentials", "skiff/mirror/dockerhub")
	if err != nil || !strings.Contains(out, "added the mirror rule alpine") {
		t.Fatalf("add: %q %q %v", out, errOut, err)
	}
	out, _, err = cli(t, e, "mirror", "rule", "get", "alpine")
	if err != nil || !strings.Contains(out, `up.example/library/alpine -> mirror/alpine tags=3\.2[0-9] platforms=linux/amd64 referrers credentials=skiff/mirror/dockerhub`) ||
		!strings.Contains(out, "updated-by:  ops@") {
		t.Errorf("get: %q %v", out, err)
	}
	out, _, err = cli(t, e, "mirror", "rule", "list")
	if err != nil || !strings.Contains(out, "alpine") || !strings.Contains(out, "never") {
		t.Errorf("list: %q %v", out, err)
	}
	out, _, err = cli(t, e, "mirror", "rule", "list", "--json")
	if err != nil || !strings.Contains(out, `"runs": {}`) || !strings.Contains(out, `"name": "alpine"`) {
		t.Errorf("list --json: %q %v", out, err)
	}
	if _, _, err := cli(t, e, "mirror", "rule", "add", "alpine", "--source", "up.example/library/alpine:3.20", "--target", "mirror/alpine"); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, e, "mirror", "rule", "history", "alpine")
	if err != nil || strings.Count(out, "set") != 2 || !strings.Contains(out, "up.example/library/alpine:3.20 -> mirror/alpine") {
		t.Errorf("history: %q %v", out, err)
	}
	out, _, err = cli(t, e, "mirror", "rule", "delete", "alpine")
	if err != nil || !strings.Contains(out, "deleted the mirror rule alpine") {
		t.Errorf("delete: %q %v", out, err)
	}
	if _, _, err := cli(t, e, "mirror", "rule", "get", "alpine"); err == nil || !strings.Contains(err.Error(), "no mirror rule is set for name alpine") {
		t.Errorf("get after delete: %v", err)
	}

	before := srv.requests.Load()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "Alpine", "--source", "up.example/a:v1", "--target", "m/a"}, `rule name "Alpine"`},
		{[]string{"add", "a", "--source", "up.example/a:v1", "--target", "m/a", "--platforms", "linux/amd46"}, `unknown architecture "amd46"`},
		{[]string{"add", "a", "--target", "m/a"}, "rule a: no source"},
		{[]string{"add", "a", "--source", "up.example/a:v1", "--target", "m/a", "--tags", "v.*"}, "must be a repository"},
		{[]string{"add", "a", "--source", "up.example/a", "--target", "m/a"}, "names a repository, not an image"},
		{[]string{"add", "a", "--source", "up.example/a:v1", "--target", "m/a", "--credentials", "a secret with spaces"}, "credentials"},
		{[]string{"get", "UPPER"}, `rule name "UPPER"`},
	} {
		if _, _, err := cli(t, e, append([]string{"mirror", "rule"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("skiff mirror rule %q: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
	if n := srv.requests.Load() - before; n != 0 {
		t.Errorf("the refused commands sent %d requests", n)
	}
}
