package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/conformance"
)

// conformanceRun is one configuration of the OCI distribution-spec
// conformance suite (the pinned `conformance` binary of scripts/tools.sh)
// against skiff.
type conformanceRun struct {
	label   string
	backend backendKind
	serve   []string          // more `skiff serve` flags
	env     map[string]string // OCI_* settings over the defaults (conformanceEnv)
	// sparse: the suite's sparse data (an image manifest with a layer never
	// uploaded, an index with an absent linux/arm64 child) in two
	// repositories under partial/, whose policy, set through the operator
	// API before the suite runs, accepts both.
	sparse bool
	// auth: `skiff serve --auth`; the suite logs in as a user with
	// pull,push,delete on its two repositories and nothing else.
	auth bool
	// expectFail: expected-failures mode (internal/conformance): the run
	// passes only when some tests failed, all matching, each refused
	// manifest PUT answered 400 MANIFEST_BLOB_UNKNOWN, in the responses and
	// the server's log. expectSkip: every skip must match
	// ("<test>: <reason>").
	expectFail, expectSkip *regexp.Regexp
	// tests, failed, skipped: the suite's own counts for this run (it
	// counts what it reached: a failing step adds or removes entries).
	tests, failed, skipped int
}

// The anonymous blob mount an authenticated registry refuses: the suite
// gets 202, falls back to an upload and reports a skip (sha256, sha512).
var authSkips = regexp.MustCompile(`mount anonymous/blob-mount-anonymous: registry returned status 202,`)

// conformanceRuns are the configurations `make test` runs (make
// conformance): every optional API test on, sha512 data.
var conformanceRuns = []conformanceRun{
	{label: "embedded", backend: backendLocal, tests: 986},
	// Blobs served by skiff itself (no redirects): the embedded settings.
	{label: "aws", backend: backendAWS, serve: []string{"--redirect-min=-1"}, tests: 986},
	// The default redirects: a blob GET of >= 1 MiB answers 307 to a
	// presigned S3 URL, whose answer can't carry Docker-Content-Digest, so
	// that check is off (with it on, the 8 chunked blob-get tests fail).
	{label: "aws-redirect", backend: backendAWS, env: map[string]string{"OCI_API_BLOBS_DIGEST_HEADER": "false"}, tests: 986},
	{label: "embedded-sparse", backend: backendLocal, sparse: true, tests: 1032},
	// The strict default: only the sparse tests fail, refused with
	// MANIFEST_BLOB_UNKNOWN.
	{label: "embedded-sparse-strict", backend: backendLocal, env: sparseData, expectFail: sparseTests, tests: 1028, failed: 13},
	{label: "aws-sparse", backend: backendAWS, serve: []string{"--redirect-min=-1"}, sparse: true, tests: 1032},
	{label: "aws-sparse-strict", backend: backendAWS, serve: []string{"--redirect-min=-1"}, env: sparseData, expectFail: sparseTests, tests: 1028, failed: 13},
	{label: "embedded-auth", backend: backendLocal, auth: true, expectSkip: authSkips, tests: 982, skipped: 2},
	{label: "aws-auth", backend: backendAWS, serve: []string{"--redirect-min=-1"}, auth: true, expectSkip: authSkips, tests: 982, skipped: 2},
}

var (
	sparseData   = map[string]string{"OCI_DATA_SPARSE": "true"}
	sparseTests  = regexp.MustCompile(`/sparse/`)
	sparsePolicy = []string{"partial/", "--index-children=none", "--image-blobs=optional"}
)

// externalConformance is the run against SKIFF_IT_REGISTRY (the Lambda
// functions behind their front door): blob GETs of >= 1 MiB are 307s to
// presigned S3 URLs, so the blob Docker-Content-Digest check is off. With
// SKIFF_IT_USER the suite logs in as that admin.
var externalConformance = conformanceRun{label: "external", env: map[string]string{"OCI_API_BLOBS_DIGEST_HEADER": "false"}, tests: 986}

// TestConformance runs the OCI conformance suite in each configuration of
// conformanceRuns, each against a fresh skiff serve, or once against the
// registry SKIFF_IT_REGISTRY names (CONFORMANCE_LABEL names that run).
// Each run writes its results (junit.xml, report.html, the suite's and the
// server's logs) and a one-line summary.txt to results/conformance/LABEL/.
// -run 'TestConformance/aws-auth' picks one.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite: skipped in -short mode")
	}
	if serverKind == flavourDistribution {
		t.Skip("conformance runs are skiff's (SKIFF_IT_DISTRIBUTION is set)")
	}
	suite := requireTool(t, "conformance")
	runs := conformanceRuns
	if external != nil {
		run := externalConformance
		if l := os.Getenv("CONFORMANCE_LABEL"); l != "" {
			run.label = l
		}
		if external.user != "" {
			// Authenticated: the anonymous mount is refused, as above.
			run.expectSkip, run.tests, run.skipped = authSkips, 982, 2
		}
		runs = []conformanceRun{run}
	}
	for _, c := range runs {
		t.Run(c.label, func(t *testing.T) {
			// Each run waits on its server more than it computes.
			t.Parallel()
			c.run(t, suite)
		})
	}
}

func (c conformanceRun) run(t *testing.T, suite string) {
	serve := append([]string(nil), c.serve...)
	if c.sparse {
		serve = append(serve, "--operator-api")
	}
	var r *registry
	var user *authUser
	repos := []string{"conformance/one", "conformance/two"}
	if c.sparse {
		repos = []string{"partial/one", "partial/two"}
	}
	switch {
	case external != nil && external.user != "":
		// The suite logs in as the admin: users created here would need
		// the operator API on, which the front door may not have.
		r = startRegistry(t, serve...)
	case c.auth:
		user = &authUser{name: "conformance", password: newPassword()}
		for _, repo := range repos {
			user.grants = append(user.grants, authGrant{prefix: repo, actions: "pull,push,delete"})
		}
		r = startAuthRegistryOn(t, c.backend, []*authUser{user}, serve...)
		basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user.name+":"+user.password))}}
		if resp := send(t, http.MethodGet, r.url("/v2/"), basic, nil); resp.status != http.StatusOK {
			t.Fatalf("GET /v2/ with %s's Basic credentials: want 200, got %s", user.name, resp)
		}
	default:
		r = startRegistryOn(t, c.backend, serve...)
	}
	for i := range repos {
		repos[i] = r.repo(repos[i])
	}

	results := filepath.Join(repoRoot, "results", "conformance", c.label)
	if err := os.RemoveAll(results); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(results, 0o755); err != nil {
		t.Fatal(err)
	}
	if c.sparse {
		policy := append(append([]string{"policy", "set"}, r.repo(sparsePolicy[0])), sparsePolicy[1:]...)
		r.skiffCommand("", append(policy, "--registry=http://"+r.host)...)
		r.awaitPolicies(t, r.repo(sparsePolicy[0]))
	}

	env := conformanceEnv(r, repos, results)
	switch {
	case user != nil:
		env = append(env, "OCI_USERNAME="+user.name, "OCI_PASSWORD="+user.password)
	case r.external && r.auth:
		env = append(env, "OCI_USERNAME="+r.adminUser, "OCI_PASSWORD="+r.adminPwd)
	}
	for k, v := range c.env {
		env = append(env, k+"="+v)
	}
	if c.sparse {
		env = append(env, "OCI_DATA_SPARSE=true")
	}
	// Any OCI_* of the caller's environment overrides the above.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OCI_") {
			env = append(env, kv)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite)
	cmd.Env = env
	cmd.Dir = results
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	suiteErr := cmd.Run()
	_ = os.WriteFile(filepath.Join(results, "conformance.log"), out.Bytes(), 0o644)
	elapsed := time.Since(start).Round(100 * time.Millisecond)

	o := conformance.Options{MinTests: 980, MaxList: 400, ExpectFail: c.expectFail, ExpectCode: "MANIFEST_BLOB_UNKNOWN", ExpectSkip: c.expectSkip}
	if c.sparse || c.env["OCI_DATA_SPARSE"] == "true" {
		o.MinTests = 1020 // the full suite is NOT above 1,000 without the sparse data
	}
	if c.expectFail != nil && !r.external {
		logFile := filepath.Join(results, "server.log")
		if err := os.WriteFile(logFile, []byte(r.log.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		o.ServerLog = logFile
	}
	junit := filepath.Join(results, "junit.xml")
	if _, err := os.Stat(junit); err != nil {
		t.Fatalf("the suite wrote no junit.xml (%v); its output:\n%s", suiteErr, indent(tailLines(out.String(), 50)))
	}
	var sum bytes.Buffer
	code, err := conformance.Summarize(&sum, junit, o)
	if err != nil {
		t.Fatal(err)
	}
	first, rest, _ := strings.Cut(sum.String(), "\n")
	line := fmt.Sprintf("[%s] %s (%s)", c.label, first, elapsed)
	_ = os.WriteFile(filepath.Join(results, "summary.txt"), []byte(line+"\n"), 0o644)
	t.Log(line)
	if code != 0 {
		t.Errorf("%s\n%s(results in %s)", line, rest, results)
	} else if suiteErr != nil && c.expectFail == nil {
		t.Errorf("%s: the suite exited %v although junit.xml shows no failure; see %s/conformance.log", line, suiteErr, results)
	}
	if counts := fmt.Sprintf("%d tests, %d failed, %d skipped", c.tests, c.failed, c.skipped); !strings.Contains(first, counts) {
		t.Errorf("[%s] the suite counted %q, want %s (the pinned suite's count for this configuration)", c.label, first, counts)
	}
	if !r.external {
		_ = os.WriteFile(filepath.Join(results, "server.log"), []byte(r.log.String()), 0o644)
	}
}

// conformanceEnv is the suite's environment: every optional API test on,
// sha512 data, results in results.
func conformanceEnv(r *registry, repos []string, results string) []string {
	env := []string{
		"HOME=" + os.Getenv("HOME"), "PATH=" + os.Getenv("PATH"),
		"OCI_REGISTRY=" + r.host, "OCI_TLS=disabled",
		"OCI_REPO1=" + repos[0], "OCI_REPO2=" + repos[1],
		"OCI_API_BLOBS_DIGEST_HEADER=true",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_TAG_PARAM=true",
		// On by default in this suite version; set so that a changed
		// default can't silently drop the sha512 tests.
		"OCI_DATA_SHA512=true",
		"OCI_RESULTS_DIR=" + results,
	}
	return env
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
