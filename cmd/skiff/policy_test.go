package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/server"
	"github.com/skiff-registry/skiff/pkg/oci"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParsePolicyArgs(t *testing.T) {
	t.Parallel()
	const reg = "--registry=http://127.0.0.1:5000"
	tests := []parseCase[policyArgs]{
		{
			name: "set, flags after the prefix",
			args: []string{"set", "mirror/", "--index-children=platforms", "--platforms=linux/arm64/v8, linux/amd64", reg},
			want: policyArgs{action: "set", prefix: "mirror", registry: "http://127.0.0.1:5000",
				policy: oci.Policy{Prefix: "mirror", IndexChildren: "platforms", Platforms: []string{"linux/amd64", "linux/arm64/v8"}, ImageBlobs: "required"}},
		},
		{
			name: "set, flags first, --json, space-separated values",
			args: []string{"set", "--index-children", "none", "--image-blobs", "optional", "--json", "--registry", "https://reg.example/", "team/app"},
			want: policyArgs{action: "set", prefix: "team/app", registry: "https://reg.example", json: true,
				policy: oci.Policy{Prefix: "team/app", IndexChildren: "none", ImageBlobs: "optional"}},
		},
		{
			name: "set with --table",
			args: []string{"set", "mirror", "--index-children=all", "--table=skiff-meta"},
			want: policyArgs{action: "set", prefix: "mirror", table: "skiff-meta",
				policy: oci.Policy{Prefix: "mirror", IndexChildren: "all", ImageBlobs: "required"}},
		},
		{name: "get", args: []string{"get", "mirror/", reg}, want: policyArgs{action: "get", prefix: "mirror", registry: "http://127.0.0.1:5000"}},
		{name: "list from $SKIFF_REGISTRY", args: []string{"list"}, env: env("SKIFF_REGISTRY", "http://10.0.0.1:5000"),
			want: policyArgs{action: "list", registry: "http://10.0.0.1:5000"}},
		{name: "--table wins over $SKIFF_REGISTRY", args: []string{"history", "mirror", "--table=t"}, env: env("SKIFF_REGISTRY", "http://x"),
			want: policyArgs{action: "history", prefix: "mirror", table: "t"}},
		{name: "delete", args: []string{"delete", reg, "--", "mirror"}, want: policyArgs{action: "delete", prefix: "mirror", registry: "http://127.0.0.1:5000"}},

		{name: "no command", args: nil, wantErr: "needs a command"},
		{name: "unknown command", args: []string{"show", "mirror", reg}, wantErr: `unknown policy command "show"`},
		{name: "set without mode", args: []string{"set", "mirror", reg}, wantErr: "needs --index-children"},
		{name: "set unknown mode", args: []string{"set", "mirror", "--index-children=sometimes", reg}, wantErr: `unknown index-children mode "sometimes"`},
		{name: "set unknown image-blobs", args: []string{"set", "mirror", "--index-children=all", "--image-blobs=maybe", reg}, wantErr: `unknown image-blobs mode "maybe"`},
		{name: "set malformed platform", args: []string{"set", "mirror", "--index-children=platforms", "--platforms=linux", reg}, wantErr: "is not os/arch"},
		{name: "set platforms needs the mode", args: []string{"set", "mirror", "--index-children=none", "--platforms=linux/amd64", reg}, wantErr: "only allowed with index-children=platforms"},
		{name: "set platforms mode without platforms", args: []string{"set", "mirror", "--index-children=platforms", reg}, wantErr: "needs at least one platform"},
		{name: "invalid prefix", args: []string{"get", "Mirror", reg}, wantErr: "must be lower case"},
		{name: "empty prefix", args: []string{"delete", "/", reg}, wantErr: "is empty"},
		{name: "get without prefix", args: []string{"get", reg}, wantErr: "takes one PREFIX"},
		{name: "two prefixes", args: []string{"history", "a", "b", reg}, wantErr: "takes one PREFIX"},
		{name: "list with an argument", args: []string{"list", "mirror", reg}, wantErr: "takes no arguments"},
		{name: "both targets", args: []string{"list", reg, "--table=t"}, wantErr: "not both"},
		{name: "no target", args: []string{"list"}, wantErr: "--registry=URL"},
		{name: "registry without scheme", args: []string{"list", "--registry=127.0.0.1:5000"}, wantErr: "with its scheme"},
		{name: "registry with a path", args: []string{"list", "--registry=http://h/v2/"}, wantErr: "must not have a path"},
		{name: "unknown flag", args: []string{"get", "mirror", "--platforms=linux/amd64", reg}, wantErr: "unknown flag: --platforms"},
	}
	runParseCases(t, tests, parseWith("policy", newPolicyCommand))
}

// countingServer is an httptest server of the API over the embedded
// store, wired as `skiff serve` wires it, counting requests.
type countingServer struct {
	*httptest.Server
	requests atomic.Int64
}

// newTestServer serves the embedded store wired as `skiff serve` wires it
// (server.New), counting requests; operator turns the operator API on.
func newTestServer(t *testing.T, operator bool) *countingServer {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.OperatorAPI = t.TempDir(), operator
	stores, err := backend.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stores.Close() })
	srv, err := server.New(t.Context(), cfg, stores, httpapi.GroupAll, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.requests.Add(1)
		srv.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(cs.Close)
	return cs
}

// cli runs the skiff CLI in-process.
func cli(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, getenv, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestPolicyCLI(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true)
	getenv := env("USER", "tester")
	reg := "--registry=" + srv.URL
	me := localOperator(getenv) + " via 127.0.0.1"

	out, _, err := cli(t, getenv, "policy", "list", reg)
	if err != nil || !strings.Contains(out, "no policies") {
		t.Fatalf("empty list: %q %v", out, err)
	}
	out, _, err = cli(t, getenv, "policy", "set", "mirror/", "--index-children=platforms", "--platforms=linux/amd64", reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"set the policy of mirror", "platforms:", "linux/amd64", "updated-by:", me, "applies it at once"} {
		if !strings.Contains(out, want) {
			t.Errorf("set output %q lacks %q", out, want)
		}
	}
	out, _, err = cli(t, getenv, "policy", "set", "mirror", "--index-children=none", "--image-blobs=optional", "--json", reg)
	if err != nil {
		t.Fatal(err)
	}
	var rec policy.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("set --json: %q: %v", out, err)
	}
	if rec.UpdatedBy != me || rec.Previous == nil || rec.Previous.IndexChildren != "platforms" || rec.Policy.ImageBlobs != "optional" {
		t.Errorf("set --json record: %+v", rec)
	}

	out, _, err = cli(t, getenv, "policy", "get", "mirror", reg, "--json")
	var got policy.Record
	if err != nil || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("get --json: %q %v", out, err)
	}
	if diff := cmp.Diff(got, rec); diff != "" {
		t.Errorf("get (-got +want):\n%s", diff)
	}
	out, _, err = cli(t, getenv, "policy", "get", "mirror", reg)
	if err != nil || !strings.Contains(out, "index-children:  none") || !strings.Contains(out, "previous:        index-children=platforms") {
		t.Errorf("get: %q %v", out, err)
	}

	if _, _, err := cli(t, getenv, "policy", "set", "team/app", "--index-children=all", reg); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, getenv, "policy", "list", reg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "PREFIX") || !strings.HasPrefix(lines[1], "mirror ") || !strings.HasPrefix(lines[2], "team/app ") {
		t.Errorf("list:\n%s", out)
	}
	out, _, err = cli(t, getenv, "policy", "list", "--json", reg)
	var list httpapi.PolicyList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Policies) != 2 {
		t.Errorf("list --json: %q %v", out, err)
	}

	out, _, err = cli(t, getenv, "policy", "delete", "mirror/", reg)
	if err != nil || !strings.Contains(out, "deleted the policy of mirror") || !strings.Contains(out, "deleted:") {
		t.Errorf("delete: %q %v", out, err)
	}
	_, _, err = cli(t, getenv, "policy", "get", "mirror", reg)
	if err == nil || !strings.Contains(err.Error(), "no policy is set for prefix mirror") {
		t.Errorf("get after delete: %v, want the server's POLICY_UNKNOWN message", err)
	}
	if _, _, err := cli(t, getenv, "policy", "delete", "mirror", reg); err == nil {
		t.Error("second delete succeeded")
	}

	out, _, err = cli(t, getenv, "policy", "history", "mirror", reg)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], " set ") || !strings.Contains(lines[3], " delete ") || !strings.Contains(lines[3], me) {
		t.Errorf("history:\n%s", out)
	}
	out, _, err = cli(t, getenv, "policy", "history", "mirror", "--json", reg)
	var hist httpapi.PolicyHistory
	if err != nil || json.Unmarshal([]byte(out), &hist) != nil || len(hist.Changes) != 3 {
		t.Errorf("history --json: %q %v", out, err)
	}
}

// TestPolicyCLIRefusesLocally: bad input fails before any request, with
// the message the server would give.
func TestPolicyCLIRefusesLocally(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true)
	reg := "--registry=" + srv.URL
	for _, args := range [][]string{
		{"policy", "set", "mirror", "--index-children=sometimes", reg},
		{"policy", "set", "mirror", "--index-children=platforms", "--platforms=linux", reg},
		{"policy", "set", "Mirror", "--index-children=none", reg},
		{"policy", "set", "mirror", reg},
		{"policy", "get", reg},
		{"policy", "bogus", reg},
		{"policy", "list", "--bogus", reg},
	} {
		if _, _, err := cli(t, env(), args...); err == nil {
			t.Errorf("%q succeeded", args)
		}
	}
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("bad input sent %d requests", n)
	}
	// The same validation on the server gives the same message.
	_, _, local := cli(t, env(), "policy", "set", "mirror", "--index-children=sometimes", reg)
	r, err := http.NewRequest("PUT", srv.URL+"/v2/_skiff/policies/mirror", strings.NewReader(`{"indexChildren":"sometimes"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if remote := remoteError("PUT", "", resp.Status, body); remote.Error() != local.Error() {
		t.Errorf("local message %q, server message %q", local, remote)
	}
}

func TestPolicyCLIServerErrors(t *testing.T) {
	t.Parallel()
	off := newTestServer(t, false)
	_, _, err := cli(t, env(), "policy", "list", "--registry="+off.URL)
	if err == nil || !strings.Contains(err.Error(), "operator API is off") || !strings.Contains(err.Error(), "skiff serve --operator-api") {
		t.Errorf("operator API off: %v", err)
	}
	notSkiff := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "teapot here", http.StatusTeapot)
	}))
	defer notSkiff.Close()
	_, _, err = cli(t, env(), "policy", "get", "mirror", "--registry="+notSkiff.URL)
	if err == nil || !strings.Contains(err.Error(), "418") || !strings.Contains(err.Error(), "teapot here") {
		t.Errorf("non-envelope error: %v", err)
	}
}
