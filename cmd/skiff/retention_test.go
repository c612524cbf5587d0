package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/testenv"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// TestRetentionCLI sets, reads, lists, deletes and audits retention
// policies through a server's operator API, as `skiff policy` does.
func TestRetentionCLI(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true)
	getenv := env("USER", "tester")
	reg := "--registry=" + srv.URL
	me := localOperator(getenv) + " via 127.0.0.1"

	out, _, err := cli(t, getenv, "retention", "list", reg)
	if err != nil || !strings.Contains(out, "no retention policies") {
		t.Fatalf("empty list: %q %v", out, err)
	}
	out, _, err = cli(t, getenv, "retention", "set", "ci/", "--keep-tags", `pr-\d+,x=5`, "--keep-tags=v.*=10", "--untagged-after=7d", reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"set the retention policy of ci", "untagged-after:  7d", `the last 5 matching pr-\d+,x`, "the last 10 matching v.*", me, "previous:        none"} {
		if !strings.Contains(out, want) {
			t.Errorf("set output %q lacks %q", out, want)
		}
	}
	out, _, err = cli(t, getenv, "retention", "set", "ci", "--untagged-after=36h", "--json", reg)
	var rec policy.RetentionRecord
	if err != nil || json.Unmarshal([]byte(out), &rec) != nil {
		t.Fatalf("set --json: %q %v", out, err)
	}
	if rec.UpdatedBy != me || rec.Previous == nil || len(rec.Previous.KeepTags) != 2 || time.Duration(rec.Policy.UntaggedAfter) != 36*time.Hour || len(rec.Policy.KeepTags) != 0 {
		t.Errorf("set --json record: %+v", rec)
	}
	out, _, err = cli(t, getenv, "retention", "get", "ci", reg)
	if err != nil || !strings.Contains(out, "untagged-after:  36h0m0s") || strings.Contains(out, "keep-tags:") {
		t.Errorf("get: %q %v", out, err)
	}
	if _, _, err := cli(t, getenv, "retention", "set", "mirror", "--untagged-after=30d", reg); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, getenv, "retention", "list", "--json", reg)
	var list httpapi.RetentionList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Policies) != 2 || list.Policies[0].Policy.Prefix != "ci" {
		t.Errorf("list --json: %q %v", out, err)
	}
	// Index policies are another namespace.
	if out, _, err := cli(t, getenv, "policy", "list", reg); err != nil || !strings.Contains(out, "no policies") {
		t.Errorf("policy list after retention set: %q %v", out, err)
	}
	out, _, err = cli(t, getenv, "retention", "delete", "ci/", reg)
	if err != nil || !strings.Contains(out, "deleted the retention policy of ci") {
		t.Errorf("delete: %q %v", out, err)
	}
	if _, _, err := cli(t, getenv, "retention", "get", "ci", reg); err == nil || !strings.Contains(err.Error(), "no retention policy is set for prefix ci") {
		t.Errorf("get after delete: %v, want the server's POLICY_UNKNOWN message", err)
	}
	out, _, err = cli(t, getenv, "retention", "history", "ci", "--json", reg)
	var hist httpapi.RetentionHistory
	if err != nil || json.Unmarshal([]byte(out), &hist) != nil || len(hist.Changes) != 3 || hist.Changes[2].Action != "delete" || hist.Changes[2].Previous == nil {
		t.Errorf("history --json: %q %v", out, err)
	}
	out, _, err = cli(t, getenv, "retention", "history", "ci", reg)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); err != nil || len(lines) != 4 || !strings.Contains(lines[3], " delete ") {
		t.Errorf("history:\n%s %v", out, err)
	}
}

// TestRetentionCLIRefusesLocally: bad input fails before any request.
func TestRetentionCLIRefusesLocally(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true)
	reg := "--registry=" + srv.URL
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "ci"}, "needs untaggedAfter"},
		{[]string{"set", "ci", "--untagged-after=soon"}, "--untagged-after"},
		{[]string{"set", "ci", "--untagged-after=0d"}, "longer than 0"},
		{[]string{"set", "ci", "--keep-tags=v.*"}, "not PATTERN=N"},
		{[]string{"set", "ci", "--keep-tags==3"}, "not PATTERN=N"},
		{[]string{"set", "ci", "--keep-tags=v(=3"}, "not a regular expression"},
		{[]string{"set", "ci", "--keep-tags=v.*=0"}, "between 1 and"},
		{[]string{"set", "Bad/", "--untagged-after=1d"}, "not a repository name"},
		{[]string{"get", "_x"}, "not a repository name"},
	} {
		before := srv.requests.Load()
		_, _, err := cli(t, env(), append(append([]string{"retention"}, tc.args...), reg)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
		if n := srv.requests.Load() - before; n != 0 {
			t.Errorf("%v sent %d requests", tc.args, n)
		}
	}
}

// TestRetentionCLITable: with --table the CLI changes the table itself.
func TestRetentionCLITable(t *testing.T) {
	testenv.DynamoDB(t)
	const arn = "arn:aws:iam::123456789012:user/alice"
	t.Setenv("AWS_ENDPOINT_URL_STS", fakeSTS(t, arn))
	table := "--table=" + newTable(t)
	getenv := env("USER", "tester")
	if _, _, err := cli(t, getenv, "retention", "set", "mirror/", "--untagged-after=30d", table); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, getenv, "retention", "get", "mirror", "--json", table)
	var rec policy.RetentionRecord
	if err != nil || json.Unmarshal([]byte(out), &rec) != nil {
		t.Fatalf("get --json: %q %v", out, err)
	}
	if rec.Policy.UntaggedAfter != oci.Duration(30*24*time.Hour) || rec.UpdatedBy != arn {
		t.Errorf("get: %+v", rec)
	}
}
