// Package testenv is what Skiff's tests share about their surroundings:
// where the client tools are, whether a missing tool or stand-in skips a
// test or fails it, and the AWS stand-ins, started in this process when
// the environment names none.
//
// A missing tool or stand-in skips the test, loudly, on a developer's
// machine; it fails the test when CI=true, SKIFF_REQUIRE_TOOLS=1 or
// SKIFF_REQUIRE_STANDINS=1 (make test sets the last two): there a skipped
// check would read as a pass.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skiff-registry/skiff/internal/standin"
)

// Required says whether a missing tool or stand-in fails a test.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SKIFF_REQUIRE_TOOLS") == "1" || os.Getenv("SKIFF_REQUIRE_STANDINS") == "1"
}

// Missing skips t because what is missing (with a hint how to get it), or
// fails it when Required.
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	msg := fmt.Sprintf("!!! %s: %s !!!", what, hint)
	if Required() {
		t.Fatalf("%s (CI=true, SKIFF_REQUIRE_TOOLS=1 or SKIFF_REQUIRE_STANDINS=1 make it a failure)", msg)
	}
	fmt.Fprintf(os.Stderr, "\n%s\n!!! SKIPPING %s\n\n", msg, t.Name())
	t.Skipf("%s: SKIPPED, this test did not run", msg)
}

var root = sync.OnceValues(standin.RepoRoot)

// Root is the repository's root directory.
func Root(t testing.TB) string {
	t.Helper()
	r, err := root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// LookTool finds a tool: <repo>/.tools/bin first (pinned by
// scripts/tools.sh), then PATH; "" when neither has it.
func LookTool(name string) string {
	if r, err := root(); err == nil {
		p := filepath.Join(r, ".tools", "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// Tool is LookTool, or Missing when the tool is nowhere.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := LookTool(name)
	if p == "" {
		Missing(t, name+" not found in .tools/bin or PATH", "run `make tools` (scripts/tools.sh)")
	}
	return p
}

// The stand-ins this process started, once each, for the tests that need
// them and the environment names none. They live as long as the process
// (dynalite is killed with it).
var (
	s3Once     = sync.OnceValues(startS3)
	dynamoOnce = sync.OnceValues(startDynamo)
)

// startS3 runs the S3 stand-in in a child: this test binary again, which
// serves it from init (child.go). Not in the test's own process: its
// objects would count in the test's heap, which some tests measure (the
// adapters' no-buffering checks).
func startS3() (string, error) {
	return startS3Child()
}

func startDynamo() (string, error) {
	r, err := root()
	if err != nil {
		return "", err
	}
	d, err := standin.StartDynalite(standin.DynaliteOptions{Root: r, DieWithParent: true})
	if err != nil {
		return "", err
	}
	return d.URL, nil
}

// setEnv points the SDK at a stand-in this process started. os.Setenv,
// not t.Setenv: parallel tests share it, and it stays for the process.
var envMu sync.Mutex

func setEnv(kv []string) {
	envMu.Lock()
	defer envMu.Unlock()
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		if os.Getenv(k) == "" || strings.HasPrefix(k, "AWS_ENDPOINT_URL_") {
			os.Setenv(k, v)
		}
	}
}

// S3 makes sure AWS_ENDPOINT_URL_S3 names an S3 stand-in, starting the
// in-memory one (gofakes3) for this process when it names none, and
// returns it.
func S3(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("AWS_ENDPOINT_URL_S3"); u != "" {
		return u
	}
	u, err := s3Once()
	if err != nil {
		t.Fatalf("start the in-process S3 stand-in: %v", err)
	}
	setEnv(standin.Env(u, ""))
	return u
}

// DynamoDB makes sure AWS_ENDPOINT_URL_DYNAMODB names a DynamoDB stand-in,
// starting dynalite when it names none (Missing without Node.js), and
// returns it.
func DynamoDB(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); u != "" {
		return u
	}
	u, err := dynamoOnce()
	if err != nil {
		// No Node.js, or dynalite could not be installed (no network).
		Missing(t, "no DynamoDB stand-in: AWS_ENDPOINT_URL_DYNAMODB is not set and dynalite did not start: "+err.Error(),
			"install Node.js (dynalite comes from npm), or run under `go run ./tools/standins`")
	}
	setEnv(standin.Env("", u))
	return u
}

// AWS is S3 and DynamoDB: both stand-ins, for a test of the aws backend.
func AWS(t testing.TB) {
	t.Helper()
	S3(t)
	DynamoDB(t)
}

// HaveAWS says whether both stand-ins are there or can be started, for a
// test that runs on every backend it can: without a DynamoDB stand-in it
// is false (said in the log), and Required fails the test.
func HaveAWS(t testing.TB) bool {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		if _, err := dynamoOnce(); err != nil {
			if Required() {
				t.Fatalf("no DynamoDB stand-in (AWS_ENDPOINT_URL_DYNAMODB unset, dynalite did not start: %v): the aws backend can't be tested", err)
			}
			t.Logf("NOTE: no DynamoDB stand-in (%v): the aws backend is not tested here", err)
			return false
		}
	}
	AWS(t)
	return true
}

// Buffer is a bytes.Buffer that goroutines may write (a server's log, a
// process's output) while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
