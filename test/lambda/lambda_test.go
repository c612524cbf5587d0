//go:build e2e

// Package lambda is the end-to-end test of the Lambda deployment on this
// machine (`make e2e-lambda`; build tag e2e, so `go test ./...` leaves it
// out): the three functions under the Lambda emulator behind the front
// door (internal/stack, `make stack`), in each mode, on the AWS stand-ins,
// and every test of test/integration through that front door.
//
// SKIFF_E2E_REGISTRY=host:port (with SKIFF_E2E_USER and SKIFF_E2E_PASSWORD,
// an admin; SKIFF_E2E_INGEST=1 when uploads have no body cap) runs the
// same checks against a deployment that is already running (LocalStack:
// localstack/test.sh) instead of starting stacks.
package lambda

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/stack"
	"github.com/skiff-registry/skiff/internal/standin"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// TestLambdaStack runs, for each mode of E2E_MODES (default "ingest
// lambda"), the stack and the checks through its front door; then a direct
// call to a function, and to the ingest service, without the origin
// secret must be refused. The report (zip sizes, cold starts, conformance
// counts, the integration tests' verdicts, requests per function) is in
// results/e2e-lambda/summary.txt.
func TestLambdaStack(t *testing.T) {
	root := testenv.Root(t)
	out := filepath.Join(root, "results", "e2e-lambda")
	if addr := os.Getenv("SKIFF_E2E_REGISTRY"); addr != "" {
		label := os.Getenv("SKIFF_E2E_LABEL")
		if label == "" {
			label = "external"
		}
		dir := filepath.Join(out, label)
		report := checks(t, root, dir, addr, os.Getenv("SKIFF_E2E_USER"), os.Getenv("SKIFF_E2E_PASSWORD"), label, os.Getenv("SKIFF_E2E_INGEST") == "1")
		writeReport(t, filepath.Join(dir, "summary.txt"), report)
		return
	}
	modes := strings.Fields(os.Getenv("E2E_MODES"))
	if len(modes) == 0 {
		modes = []string{"ingest", "lambda"}
	}
	for _, mode := range modes {
		if mode != "ingest" && mode != "lambda" {
			t.Fatalf("E2E_MODES: unknown mode %q (want ingest, lambda)", mode)
		}
	}
	testenv.Tool(t, "aws-lambda-rie")
	testenv.AWS(t)
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	zips := run(t, root, "scripts/functions.sh")
	report.WriteString("== Lambda functions: deployment zips (linux/arm64, provided.al2023)\n" + zips)

	bin := t.TempDir()
	for i, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(out, mode)
			noAuth := os.Getenv("SKIFF_AUTH") == "false"
			st, err := stack.Start(t.Context(), stack.Options{
				Root: root, Ingest: mode == "ingest", Logs: dir, Bin: bin, Build: i == 0,
				NoAuth: noAuth, ForwardedRealm: os.Getenv("E2E_REALM") == "forwarded",
			})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Stop()
			user, password := st.AdminUser, st.AdminPassword
			if noAuth {
				user, password = "", ""
			}
			fmt.Fprintf(&report, "\n######## mode %s: %s\n", mode, map[string]string{
				"ingest": "uploads to the ingest service (skiff serve --ingest), everything else to the functions",
				"lambda": "pure Lambda, uploads to the blob function (4 MiB per request)",
			}[mode])
			checked := checks(t, root, dir, st.Registry, user, password, "lambda-"+mode, mode == "ingest")
			// After the checks: the front door's first request of each
			// instance stays its cold start, for the report.
			directCalls(t, st)
			report.WriteString(coldStarts(t, dir) + "\n" + checked)
		})
	}
	report.WriteString(`
init_ms: the function's own measure, process start to ready (10 ms resolution); main_ms: main() to ready;
rie_init_ms: the emulator's INIT REPORT (runtime start to its first /next); first_request_ms: the front
door's duration of the instance's first request, init included. Local stand-ins, no Secrets Manager:
a deployed cold start adds the sandbox, the zip, three GetSecretValue calls and real network round trips.
`)
	writeReport(t, filepath.Join(out, "summary.txt"), report.String())
}

func writeReport(t *testing.T, path, report string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Error(err)
	}
	t.Log("\n" + report)
}

// run runs a command in the repository and returns its output.
func run(t *testing.T, root, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

// checks runs every test of test/integration against the registry at addr
// (SKIFF_IT_REGISTRY; user, an admin, or none when it has no auth): the
// conformance suite first, on its own (label), then the rest, the body
// limits (SKIFF_IT_BODY_CAP without ingest) and the real clients among
// them. A test that can't apply to an external registry names itself
// (notApplicable); any other skip fails. It returns the report's lines.
func checks(t *testing.T, root, dir, addr, user, password, label string, ingest bool) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	na := filepath.Join(dir, "not-applicable.txt")
	_ = os.Remove(na)
	bodyCap := ""
	if !ingest {
		bodyCap = strconv.Itoa(deploy.LambdaMaxBody)
	}
	env := append(os.Environ(), "GOFLAGS=", "SKIFF_REQUIRE_TOOLS=1", "SKIFF_IT_REGISTRY="+addr, "SKIFF_IT_USER="+user,
		"SKIFF_IT_PASSWORD="+password, "SKIFF_IT_BODY_CAP="+bodyCap, "CONFORMANCE_LABEL="+label, "SKIFF_IT_NOT_APPLICABLE="+na)
	var log bytes.Buffer
	start := time.Now()
	failed := false
	for _, sel := range []string{"-run=^TestConformance$", "-skip=^TestConformance$"} {
		cmd := exec.CommandContext(t.Context(), "go", "test", "-count=1", "-v", "-timeout=10m", sel, "./test/integration")
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = root, env, &log, &log
		// Tied: a test that times out or panics leaves no go test behind.
		if err := standin.StartTied(cmd, true); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			failed = true
		}
	}
	elapsed := time.Since(start).Round(time.Second)
	_ = os.WriteFile(filepath.Join(dir, "integration.log"), log.Bytes(), 0o644)
	notApp, _ := os.ReadFile(na)
	v := verdicts(log.String(), strings.Fields(string(notApp)))

	var r strings.Builder
	r.WriteString("== OCI conformance through the front door\n")
	if sum, err := os.ReadFile(filepath.Join(root, "results", "conformance", label, "summary.txt")); err == nil {
		r.Write(sum)
	} else {
		fmt.Fprintf(&r, "[%s] no summary\n", label)
	}
	fmt.Fprintf(&r, "\n== test/integration through the front door: %d of %d tests passed (%d subtests), %d failed, %d skipped, in %s\n",
		len(v.passed), len(v.passed)+len(v.failed)+len(v.skipped), v.subPassed, len(v.failed)+v.subFailed, len(v.skipped)+v.subSkipped, elapsed)
	for _, p := range v.passed {
		r.WriteString("ok    " + p + "\n")
	}
	for _, f := range v.failed {
		r.WriteString("FAIL  " + f + "\n")
	}
	for _, s := range v.skipped {
		r.WriteString("SKIP  " + s + " (a skip is a failure here)\n")
	}
	if len(v.notApplicable) > 0 {
		fmt.Fprintf(&r, "n/a   %s (they say why in %s)\n", strings.Join(v.notApplicable, " "), filepath.Join(dir, "integration.log"))
	}
	if front, err := os.ReadFile(filepath.Join(dir, "lambdafront.log")); err == nil {
		r.WriteString("\n== requests per function (lambdafront.log)\n")
		for _, fn := range []string{"manifest", "blob", "catalog", "ingest"} {
			fmt.Fprintf(&r, "%-9s %6d\n", fn, bytes.Count(front, []byte(`"fn":"`+fn+`"`)))
		}
	}
	if failed || len(v.failed) > 0 || len(v.skipped) > 0 || v.subFailed > 0 || v.subSkipped > 0 || len(v.passed) == 0 {
		t.Errorf("test/integration through http://%s: %d failed, %d skipped (log %s):\n%s\n%s", addr,
			len(v.failed)+v.subFailed, len(v.skipped)+v.subSkipped, filepath.Join(dir, "integration.log"), tail(log.String(), 60), errorLines(dir))
	}
	return r.String()
}

type verdict struct {
	passed, failed, skipped, notApplicable []string
	subPassed, subFailed, subSkipped       int
}

var (
	topRE = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): ([A-Za-z0-9_]+) \(([0-9.]+s)\)`)
	subRE = regexp.MustCompile(`^\s+--- (PASS|FAIL|SKIP): `)
)

// verdicts reads go test -v output: top-level results start the line,
// subtests are indented.
func verdicts(log string, notApplicable []string) verdict {
	var v verdict
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := topRE.FindStringSubmatch(line); m != nil {
			name := m[2] + " (" + m[3] + ")"
			switch {
			case m[1] == "PASS":
				v.passed = append(v.passed, name)
			case m[1] == "FAIL":
				v.failed = append(v.failed, name)
			case slices.Contains(notApplicable, m[2]):
				v.notApplicable = append(v.notApplicable, m[2])
			default:
				v.skipped = append(v.skipped, name)
			}
		} else if m := subRE.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "PASS":
				v.subPassed++
			case "FAIL":
				v.subFailed++
			case "SKIP":
				v.subSkipped++
			}
		}
	}
	return v
}

// directCalls: a call to a function's own URL, not through the front
// door, lacks the origin secret and is refused; so is one to the ingest
// service.
func directCalls(t *testing.T, st *stack.Stack) {
	t.Helper()
	invoke := st.Invoke["catalog/0"]
	if invoke == "" {
		t.Fatalf("no invoke URL for catalog/0 in %v", st.Invoke)
	}
	event := `{"version":"2.0","rawPath":"/v2/","rawQueryString":"","headers":{"host":"x.lambda-url.us-east-1.on.aws"},` +
		`"requestContext":{"http":{"method":"GET","path":"/v2/","sourceIp":"192.0.2.1"}},"isBase64Encoded":false}`
	if body, status := post(t, invoke, event); !strings.Contains(body, `"statusCode":403`) || !strings.Contains(body, "DENIED") {
		t.Errorf("a direct call to a function without the origin secret: %d %s, want a 403 DENIED answer", status, body)
	}
	if st.IngestAddr != "" {
		if body, status := post(t, "http://"+st.IngestAddr+"/v2/e2e/direct/blobs/uploads/", ""); status != http.StatusForbidden {
			t.Errorf("a direct call to the ingest service: %d %s, want 403", status, body)
		}
	}
}

func post(t *testing.T, url, body string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String(), resp.StatusCode
}

var (
	initRE  = regexp.MustCompile(`"msg":"init".*`)
	msRE    = regexp.MustCompile(`"(init_ms|main_ms)":(\d+)`)
	rieRE   = regexp.MustCompile(`INIT REPORT\(durationMs: (\d+\.\d)`)
	firstRE = regexp.MustCompile(`"dur_ms":(\d+)`)
)

// coldStarts is the table of each instance's first invocation under the
// emulator, from the functions' logs and the front door's.
func coldStarts(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("== cold starts under the emulator (the first invocation of each instance)\n")
	fmt.Fprintf(&b, "%-12s %8s %8s %12s %17s\n", "instance", "init_ms", "main_ms", "rie_init_ms", "first_request_ms")
	logs, _ := filepath.Glob(filepath.Join(dir, "functions", "*.log"))
	front, _ := os.ReadFile(filepath.Join(dir, "lambdafront.log"))
	for _, f := range logs {
		inst := strings.TrimSuffix(filepath.Base(f), ".log")
		data, _ := os.ReadFile(f)
		line := initRE.Find(data)
		if line == nil {
			fmt.Fprintf(&b, "%-12s %8s\n", inst, "(never invoked)")
			continue
		}
		ms := map[string]string{"init_ms": "?", "main_ms": "?"}
		for _, m := range msRE.FindAllSubmatch(line, -1) {
			ms[string(m[1])] = string(m[2])
		}
		initMS, mainMS := ms["init_ms"], ms["main_ms"]
		rie, first := "?", "?"
		if r := rieRE.FindSubmatch(data); r != nil {
			rie = string(r[1])
		}
		// fn-N.log is instance fn/N in the front door's log.
		i := strings.LastIndex(inst, "-")
		for _, line := range bytes.Split(front, []byte("\n")) {
			if bytes.Contains(line, []byte(`"instance":"`+inst[:i]+"/"+inst[i+1:]+`"`)) {
				if d := firstRE.FindSubmatch(line); d != nil {
					first = string(d[1])
				}
				break
			}
		}
		fmt.Fprintf(&b, "%-12s %8s %8s %12s %17s\n", inst, initMS, mainMS, rie, first)
	}
	return b.String()
}

// errorLines are the functions' and the ingest service's log lines at
// WARN or ERROR, and panics: the first 40.
func errorLines(dir string) string {
	logs, _ := filepath.Glob(filepath.Join(dir, "functions", "*.log"))
	logs = append(logs, filepath.Join(dir, "ingest.log"))
	var out []string
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if len(out) < 40 && (strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, "panic")) {
				out = append(out, filepath.Base(f)+": "+l)
			}
		}
	}
	if len(out) == 0 {
		return "(no errors or warnings in the functions' logs)"
	}
	return "log lines with errors or warnings:\n" + strings.Join(out, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestLargeLayers is TestWholeLayerClients with a 1 GiB layer
// (SKIFF_IT_LAYER_MIB overrides) through the stack with the ingest
// service: skopeo, podman, crane, oras and regctl push it and pull it
// back, digests unchanged (`make test-large`; the S3 stand-in keeps objects
// in memory: five 1 GiB pushes need about 12 GB of RAM).
func TestLargeLayers(t *testing.T) {
	root := testenv.Root(t)
	testenv.Tool(t, "aws-lambda-rie")
	testenv.AWS(t)
	dir := filepath.Join(root, "results", "test-large")
	st, err := stack.Start(t.Context(), stack.Options{Root: root, Ingest: true, Logs: filepath.Join(dir, "stack"), Bin: t.TempDir(), Build: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	mib := os.Getenv("SKIFF_IT_LAYER_MIB")
	if mib == "" {
		mib = "1024"
	}
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), "go", "test", "-count=1", "-v", "-timeout=30m", "-run=^TestWholeLayerClients$", "./test/integration")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=", "SKIFF_REQUIRE_TOOLS=1", "SKIFF_IT_REGISTRY="+st.Registry,
		"SKIFF_IT_USER="+st.AdminUser, "SKIFF_IT_PASSWORD="+st.AdminPassword, "SKIFF_IT_LAYER_MIB="+mib)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := standin.StartTied(cmd, true); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	out := buf.Bytes()
	_ = os.WriteFile(filepath.Join(dir, "test.log"), out, 0o644)
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "--- PASS") || strings.Contains(l, "--- FAIL") || strings.Contains(l, "pushed") || strings.Contains(l, "refused") {
			lines = append(lines, l)
		}
	}
	t.Logf("%s MiB through the stack with ingest, in %s:\n%s", mib, time.Since(start).Round(time.Second), strings.Join(lines, "\n"))
	if err != nil {
		t.Fatalf("TestWholeLayerClients: %v (log %s)\n%s", err, filepath.Join(dir, "test.log"), tail(string(out), 40))
	}
}
