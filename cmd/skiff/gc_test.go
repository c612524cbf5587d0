package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/registry"
)

// TestGCCLI: skiff gc on a stopped server's data: a dry run lists the
// blob nothing names and deletes nothing; a run deletes it; a young one
// stays; the JSON report says the same.
func TestGCCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	stores, err := backend.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(stores.Blobs, stores.Meta, registry.WithLinkWindow(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	push := func(s string) digest.Digest {
		d := digest.FromString(s)
		if _, err := reg.PutBlob(context.Background(), "cli/repo", d, int64(len(s)), strings.NewReader(s)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	old := push("an old blob nothing names")
	time.Sleep(3200 * time.Millisecond)
	young := push("a young one")
	stores.Close()

	args := []string{"gc", "--data", dir, "--grace", "3s", "--link-window", "100ms"}
	out, _, err := cli(t, env(), append(args, "--dry-run")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, old.String()) || strings.Contains(out, young.String()) || !strings.Contains(out, "would delete 1 links, 1 blobs and 0 orphaned copies: 25 bytes") {
		t.Errorf("dry run printed:\n%s", out)
	}
	out, _, err = cli(t, env(), append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var rep gc.Report
	if err := json.NewDecoder(bytes.NewReader([]byte(out))).Decode(&rep); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	if rep.DryRun || rep.LinksDeleted != 1 || rep.BlobsDeleted != 1 || rep.BytesReclaimed != 25 || len(rep.Deleted) != 2 || rep.Deleted[0].Digest != old {
		t.Errorf("report %+v", rep)
	}
	out, _, err = cli(t, env(), args...)
	if err != nil || !strings.Contains(out, "deleted 0 links, 0 blobs and 0 orphaned copies: 0 bytes") {
		t.Errorf("second run: %q, %v", out, err)
	}
}

func TestGCCLIMistakes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gc"}, "say where the data is"},
		{[]string{"gc", "--data", t.TempDir()}, "holds no skiff data"},
		{[]string{"gc", "--data", "x", "--table", "t"}, "not both"},
		{[]string{"gc", "--table", "t"}, "need both --table and --bucket"},
		{[]string{"gc", "--data", ".", "--grace", "soon"}, `invalid argument "soon" for "--grace" flag`},
		{[]string{"gc", "extra"}, "no arguments"},
		{[]string{"gc", "--registry", "http://x", "--data", "d"}, "one of them"},
		{[]string{"gc", "--registry", "ftp://x"}, "must be the server's URL"},
	} {
		_, _, err := cli(t, env(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestGCCLIRemote: skiff gc --registry has the server's operator API run
// the pass.
func TestGCCLIRemote(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true)
	out, _, err := cli(t, env(), "gc", "--registry", srv.URL, "--dry-run")
	if err != nil || !strings.Contains(out, "would delete 0 links, 0 blobs and 0 orphaned copies: 0 bytes (grace 24h0m0s") {
		t.Errorf("skiff gc --registry: %q, %v", out, err)
	}
	out, _, err = cli(t, env(), "gc", "--registry", srv.URL, "--grace", "48h", "--json")
	var rep gc.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Grace != "48h0m0s" || rep.DryRun {
		t.Errorf("skiff gc --registry --json: %q, %v", out, err)
	}
}
