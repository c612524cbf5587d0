package main

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-registry/skiff/internal/servertest"
)

// basicAuthUpstream is go-containerregistry's registry behind HTTP Basic
// auth (user:secret), holding app:v1, app:v2, app:dev and tools:v1.
func basicAuthUpstream(t *testing.T) string {
	t.Helper()
	host, _ := servertest.Upstream(t, "user", "secret", "app:v1", "app:v2", "app:dev", "tools:v1")
	return host
}

// dockerConfig writes a docker config with auth for host and points
// DOCKER_CONFIG at it (the copier reads credentials as crane does).
func dockerConfig(t *testing.T, host, user, password string) {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

func writeSet(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMirrorRunCLI: a three-image set (two tags by pattern, one image)
// from an upstream that needs credentials copies each image with its tag
// and summarizes; run again it copies nothing. A set whose upstream is
// down, or refuses the credentials, fails naming the rule and copies
// nothing, not even the rules that could have run.
func TestMirrorRunCLI(t *testing.T) { // not parallel: DOCKER_CONFIG
	up := basicAuthUpstream(t)
	srv := newTestServer(t, false)
	dst := strings.TrimPrefix(srv.URL, "http://")
	dockerConfig(t, up, "user", "secret")
	set := writeSet(t, `mirrors:
  - source: `+up+`/app
    target: `+dst+`/mirror/app
    tags: 'v[0-9]+'
  - source: `+up+`/tools:v1
    target: `+dst+`/mirror/tools
`)
	out, errOut, err := cli(t, env(), "mirror", "run", "--insecure", set)
	if err != nil {
		t.Fatalf("skiff mirror run: %v\n%s", err, errOut)
	}
	lines := jsonLines(t, out)
	sum := lines[len(lines)-1]
	if sum["event"] != "summary" || sum["images"] != float64(3) || sum["blobsCopied"] != float64(9) {
		t.Errorf("summary %v, want 3 images and 9 blobs", sum)
	}
	for _, ref := range []string{"mirror/app:v1", "mirror/app:v2", "mirror/tools:v1"} {
		resp, err := http.Head(srv.URL + "/v2/" + strings.Replace(ref, ":", "/manifests/", 1))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s after the run: %v %v", ref, resp, err)
		}
	}
	if resp, _ := http.Head(srv.URL + "/v2/mirror/app/manifests/dev"); resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("mirror/app:dev, which the pattern does not match, was copied: %v", resp)
	}
	out, _, err = cli(t, env(), "mirror", "run", "--insecure", set)
	if err != nil {
		t.Fatal(err)
	}
	lines = jsonLines(t, out)
	if sum := lines[len(lines)-1]; sum["blobsCopied"] != float64(0) || sum["manifestsSkipped"] != float64(3) {
		t.Errorf("second run: %v, want nothing copied", sum)
	}

	before := srv.requests.Load()
	down := writeSet(t, `mirrors:
  - source: `+up+`/tools:v1
    target: `+dst+`/other/tools
  - source: 127.0.0.1:1/app:v1
    target: `+dst+`/other/app
`)
	_, _, err = cli(t, env(), "mirror", "run", "--insecure", down)
	if err == nil || !strings.Contains(err.Error(), "nothing copied: 1 of 2 rules cannot read their source") ||
		!strings.Contains(err.Error(), "line 4: mirrors[1] (127.0.0.1:1/app:v1): read the source:") {
		t.Errorf("an unreachable upstream: %v, want the rule named and nothing copied", err)
	}
	dockerConfig(t, up, "user", "wrong")
	_, _, err = cli(t, env(), "mirror", "run", "--insecure", down)
	if err == nil || !strings.Contains(err.Error(), "line 2: mirrors[0] ("+up+"/tools:v1): read the source:") || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("bad credentials: %v, want the rule named with UNAUTHORIZED", err)
	}
	if n := srv.requests.Load() - before; n != 0 {
		t.Errorf("the refused runs sent %d requests to the destination, want none", n)
	}

	bad := writeSet(t, "mirrors:\n  - source: "+up+"/tools:v1\n    target: "+dst+"/x/tools\n    platforms: [linux/amd46]\n")
	_, _, err = cli(t, env(), "mirror", "run", "--insecure", bad)
	if err == nil || !strings.Contains(err.Error(), `line 2: mirrors[0] (`+up+`/tools:v1): platform "linux/amd46": unknown architecture`) {
		t.Errorf("a malformed set: %v, want the line named", err)
	}
	if n := srv.requests.Load() - before; n != 0 {
		t.Errorf("the refused runs sent %d requests to the destination, want none", n)
	}
}
