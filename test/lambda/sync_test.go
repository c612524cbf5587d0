//go:build e2e

package lambda

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skiff-registry/skiff/internal/stack"
	"github.com/skiff-registry/skiff/internal/standin"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// TestSyncFunction: the same three images of an upstream (two tags of a
// repository by pattern, one image) mirrored into the pure-Lambda stack
// both ways produce the same repositories and digests: `skiff mirror run`
// with a mirror set through the front door (push mode), and the sync
// function (functions/sync) under the Lambda emulator, invoked with the
// schedule's event, running the same rules stored with `skiff mirror rule
// add` (pull mode). `skiff mirror rule list` then shows each rule's run.
func TestSyncFunction(t *testing.T) {
	root := testenv.Root(t)
	rie := testenv.Tool(t, "aws-lambda-rie")
	testenv.AWS(t)
	bin, logs := t.TempDir(), filepath.Join(root, "results", "e2e-lambda", "sync")
	st, err := stack.Start(t.Context(), stack.Options{Root: root, Logs: logs, Bin: bin, Build: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()

	// The upstream, in this process: go-containerregistry's registry.
	ts := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer ts.Close()
	up := strings.TrimPrefix(ts.URL, "http://")
	want := map[string]string{}
	for _, ref := range []string{"app:v1", "app:v2", "app:dev", "tools:v1"} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := name.ParseReference(up+"/"+ref, name.Insecure)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		want[ref] = d.String()
	}

	// The clients' credentials for the front door, and the CLI's.
	home := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(st.AdminUser + ":" + st.AdminPassword))
	writeTestFile(t, filepath.Join(home, "config.json"), `{"auths":{"`+st.Registry+`":{"auth":"`+auth+`"}}}`)
	env := append(os.Environ(), "DOCKER_CONFIG="+home, "SKIFF_USERNAME="+st.AdminUser, "SKIFF_PASSWORD="+st.AdminPassword,
		"SKIFF_REGISTRY=http://"+st.Registry)
	skiff := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "skiff"), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skiff %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	set := filepath.Join(t.TempDir(), "mirror.yaml")
	writeTestFile(t, set, fmt.Sprintf("mirrors:\n  - source: %s/app\n    target: %s/push/app\n    tags: 'v[0-9]+'\n  - source: %s/tools:v1\n    target: %s/push/tools\n",
		up, st.Registry, up, st.Registry))
	skiff("mirror", "run", "--insecure", "--json", set)

	skiff("mirror", "rule", "add", "app", "--source", up+"/app", "--tags", "v[0-9]+", "--target", "pull/app")
	skiff("mirror", "rule", "add", "tools", "--source", up+"/tools:v1", "--target", "pull/tools")

	inv := invokeSync(t, rie, filepath.Join(bin, "functions", "sync", "bootstrap"), logs, st)
	if inv["outcome"] != "finished" {
		t.Fatalf("the sync's invocation: %v, want a finished run", inv)
	}

	for _, ref := range []string{"app:v1", "app:v2", "tools:v1"} {
		for _, mode := range []string{"push", "pull"} {
			got := headDigest(t, st, mode+"/"+ref)
			if got != want[ref] {
				t.Errorf("%s/%s: %q, upstream %s", mode, ref, got, want[ref])
			}
		}
	}
	for _, mode := range []string{"push", "pull"} {
		if got := headDigest(t, st, mode+"/app:dev"); got != "" {
			t.Errorf("%s/app:dev, which the pattern leaves out, is there: %s", mode, got)
		}
	}
	var listed struct {
		Runs map[string]struct {
			Images int      `json:"images"`
			Errors []string `json:"errors"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(skiff("mirror", "rule", "list", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if r := listed.Runs["app"]; r.Images != 2 || len(r.Errors) != 0 {
		t.Errorf("app's last run: %+v, want 2 images and no error", r)
	}
	if r := listed.Runs["tools"]; r.Images != 1 || len(r.Errors) != 0 {
		t.Errorf("tools' last run: %+v, want 1 image and no error", r)
	}
}

// invokeSync runs the sync bootstrap under the Lambda emulator with the
// stack's table and bucket and invokes it once with the schedule's event.
func invokeSync(t *testing.T, rie, bootstrap, logs string, st *stack.Stack) map[string]any {
	t.Helper()
	emu, api := freeAddr(t), freeAddr(t)
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", emu, "--runtime-api-address", api, bootstrap)
	cmd.Env = append(os.Environ(), "SKIFF_S3_BUCKET="+st.Bucket, "SKIFF_DYNAMODB_TABLE="+st.Table, "SKIFF_AUTH=false",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=300", "AWS_LAMBDA_FUNCTION_NAME=sync")
	logFile, err := os.Create(filepath.Join(logs, "sync.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := standin.StartTied(cmd, true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := "http://" + emu + "/2015-03-31/functions/function/invocations"
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.Dial("tcp", emu); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the emulator never listened")
		}
		time.Sleep(100 * time.Millisecond)
	}
	body, status := post(t, url, `{"source":"skiff-sync-schedule"}`)
	if status != http.StatusOK {
		b, _ := os.ReadFile(logFile.Name())
		t.Fatalf("invoke the sync: %d %s\n%s", status, body, b)
	}
	var inv map[string]any
	if err := json.Unmarshal([]byte(body), &inv); err != nil {
		t.Fatalf("the sync answered %q: %v", body, err)
	}
	return inv
}

// headDigest is the digest of repo:tag through the front door ("" if it
// is not there).
func headDigest(t *testing.T, st *stack.Stack, ref string) string {
	t.Helper()
	r, err := name.ParseReference(st.Registry+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r, remote.WithAuth(&authn.Basic{Username: st.AdminUser, Password: st.AdminPassword}))
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeTestFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
