package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/internal/testenv"
)

const (
	// readyTimeout is generous because a -race server on a busy 2-core CI
	// machine can take a few seconds to open its store.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a graceful shutdown before the harness uses SIGKILL.
	stopTimeout = 10 * time.Second
	// logTailLines is how much of the server log a failing test prints.
	logTailLines = 400
)

// registry is one server process under test. Its log (stdout and stderr)
// survives restarts and is printed when the test fails.
type registry struct {
	t       *testing.T
	host    string // 127.0.0.1:port, stable across restarts
	dataDir string
	config  string // distribution only: its YAML config
	// backend is skiff's storage: SKIFF_IT_BACKEND's unless the test
	// chose (startRegistryOn). bucket and table hold the data on aws: fresh
	// for each registry, kept across its restarts (the stand-ins keep the
	// state).
	backend       backendKind
	bucket, table string
	// extra are more `skiff serve` flags (startRegistry's arguments).
	extra []string
	// bin and argv, when set, replace serverBin and args(): another
	// registry next to the one under test (startUpstream).
	bin  string
	argv []string
	log  *logBuffer
	// auth: skiff runs with --auth (startAuthRegistry); readiness is then
	// the 401 an anonymous GET /v2/ gets, and the harness's own requests
	// (verifyRemote, readManifest) carry the admin's tokens (authed).
	auth                bool
	adminUser, adminPwd string
	// external: the registry of SKIFF_IT_REGISTRY, no process of ours.
	// prefix ("it-<random>/") then starts every repository name of the
	// test (repo), so tests sharing the registry never meet; tokens are
	// the registry's own, from its token endpoint (external_test.go).
	external bool
	prefix   string
	tokens   *tokenCache

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// startRegistry starts a server with a fresh data directory and stops it when
// the test ends. extra are more `skiff serve` flags, e.g. --operator-api
// (ignored when the harness tests distribution, SKIFF_IT_DISTRIBUTION).
func startRegistry(t *testing.T, extra ...string) *registry {
	t.Helper()
	return startRegistryOn(t, backend, extra...)
}

// startRegistryOn is startRegistry on the given backend; on aws it uses
// the stand-ins of the environment or starts them (testenv.AWS).
func startRegistryOn(t *testing.T, kind backendKind, extra ...string) *registry {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped in -short mode")
	}
	if external != nil {
		return useExternal(t, extra...)
	}
	r := &registry{
		t:       t,
		host:    net.JoinHostPort("127.0.0.1", freePort(t)),
		dataDir: t.TempDir(),
		extra:   extra,
		log:     &logBuffer{},
		backend: kind,
	}
	if serverKind == flavourDistribution {
		r.config = filepath.Join(t.TempDir(), "config.yml")
		writeDistributionConfig(t, r.config, r.host, r.dataDir)
	}
	if r.backend == backendAWS {
		testenv.AWS(t)
		// Lowercase letters, digits and '-': valid as a bucket and a table.
		suffix := randomName()
		r.bucket, r.table = "skiff-it-"+suffix, "skiff-it-"+suffix
	}
	r.cleanupAndStart()
	return r
}

// authUser is a user startAuthRegistry creates before the test runs.
type authUser struct {
	name, password string
	admin          bool
	grants         []authGrant
}

// authGrant gives actions ("pull,push") on the repositories under prefix.
type authGrant struct{ prefix, actions string }

// newPassword returns a random 32-character password.
func newPassword() string { return randomName() + randomName() + randomName()[:8] }

// startAuthRegistry starts `skiff serve --auth` (plus extra flags) with a
// fresh store holding users and a harness admin (it-admin; its Basic
// credentials must open GET /v2/ once the server is up, and the harness's
// own requests carry tokens in its name, see authed). The users are created with
// `skiff user add NAME --password-stdin [--admin]` and `skiff user grant
// NAME PREFIX --actions=...`: on the embedded backend with --data before the
// server starts (bbolt: one process at a time), on aws with --table once the
// server has created the table (users are read from the table on each
// login). The token signing key is a random one in a file of the test's
// temp dir (--token-key-file), so the harness can sign its own tokens.
// Skipped with SKIFF_IT_DISTRIBUTION: the harness configures no
// authentication for distribution.
//
// With SKIFF_IT_REGISTRY the registry is that one (useExternal) and its
// admin the harness admin; the users are created there through its
// operator API, under names and grant prefixes of the test's own (the
// users are rewritten in place: read names and prefixes from them), and
// deleted when the test ends.
func startAuthRegistry(t *testing.T, users []*authUser, extra ...string) *registry {
	t.Helper()
	return startAuthRegistryOn(t, backend, users, extra...)
}

// startAuthRegistryOn is startAuthRegistry on the given backend.
func startAuthRegistryOn(t *testing.T, kind backendKind, users []*authUser, extra ...string) *registry {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped in -short mode")
	}
	if external != nil {
		return useExternalAuth(t, users, extra...)
	}
	if serverKind == flavourDistribution {
		t.Skip("authentication test: skiff only (SKIFF_IT_DISTRIBUTION is set)")
	}
	r := &registry{
		t:         t,
		host:      net.JoinHostPort("127.0.0.1", freePort(t)),
		dataDir:   t.TempDir(),
		log:       &logBuffer{},
		auth:      true,
		backend:   kind,
		adminUser: "it-admin",
		adminPwd:  newPassword(),
	}
	users = append([]*authUser{{name: r.adminUser, password: r.adminPwd, admin: true}}, users...)
	key := []byte(newPassword() + newPassword())
	keyFile := filepath.Join(t.TempDir(), "token.key")
	if err := os.WriteFile(keyFile, append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	// The harness's own requests carry tokens from the token endpoint, as
	// a client's do: a token must name its user's current credential,
	// which only the server knows.
	r.tokens = &tokenCache{host: r.host}
	r.extra = append([]string{"--auth", "--token-key-file", keyFile}, extra...)
	if r.backend == backendAWS {
		testenv.AWS(t)
		suffix := randomName()
		r.bucket, r.table = "skiff-it-"+suffix, "skiff-it-"+suffix
	} else {
		r.addUsers(users, "--data", r.dataDir)
	}
	r.cleanupAndStart()
	if r.backend == backendAWS {
		r.addUsers(users, "--table", r.table)
	}
	// Authentication is on: anonymous callers get the challenge, the
	// harness admin gets in.
	if resp := send(t, http.MethodGet, r.url("/v2/"), nil, nil); resp.status != http.StatusUnauthorized ||
		!strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("skiff serve --auth: anonymous GET /v2/: want 401 with a Bearer challenge, got %s", resp)
	}
	if resp := send(t, http.MethodGet, r.url("/v2/"), r.basicAdmin(), nil); resp.status != http.StatusOK {
		t.Fatalf("skiff serve --auth: GET /v2/ as %s: want 200, got %s", r.adminUser, resp)
	}
	return r
}

// addUsers creates users with `skiff user` on a store (--data DIR or --table
// NAME). The commands go to the server log; a password never does.
func (r *registry) addUsers(users []*authUser, store ...string) {
	r.t.Helper()
	for _, u := range users {
		add := []string{"user", "add", u.name, "--password-stdin"}
		if u.admin {
			add = append(add, "--admin")
		}
		r.skiffCommand(u.password+"\n", append(add, store...)...)
		for _, g := range u.grants {
			r.skiffCommand("", append([]string{"user", "grant", u.name, g.prefix, "--actions=" + g.actions}, store...)...)
		}
	}
}

// skiffCommand runs the skiff binary (a CLI command) with the server's
// environment, failing the test on an error.
func (r *registry) skiffCommand(stdin string, args ...string) string {
	r.t.Helper()
	out, err := r.skiffRun(stdin, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// skiffRun is skiffCommand returning the error (with the output) instead.
// With authentication the CLI gets the admin's credentials (cliEnv), for
// the operator API (--registry); --data and --table commands ignore them.
func (r *registry) skiffRun(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, serverBin, args...)
	cmd.Env = append(r.env(), r.cliEnv()...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	fmt.Fprintf(r.log, "=== harness: skiff %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("skiff %s: %v\n%s", strings.Join(args, " "), err, indent(out.String()))
	}
	return out.String(), nil
}

// repo is the repository name a test calls name: name itself on a server
// of the test's own, under the test's prefix on an external registry.
// Every repository (and policy or grant prefix) a test uses on the
// registry under test goes through it.
func (r *registry) repo(name string) string { return r.prefix + name }

// cliEnv is what the skiff CLI needs to use the registry's operator API
// (--registry=URL): the harness admin's credentials, when it has auth.
func (r *registry) cliEnv() []string {
	if !r.auth {
		return nil
	}
	return []string{"SKIFF_USERNAME=" + r.adminUser, "SKIFF_PASSWORD=" + r.adminPwd}
}

// authed returns h (a new header when h is nil) with a bearer token for
// pulling repo, on a registry with authentication; otherwise h itself. The
// token comes from the registry's token endpoint, once per scope
// (tokenCache): a token is valid only with its user's current credential
// stamp, which only the server knows. The admin's password is checked by
// bcrypt once; the server remembers it after that (auth's verified).
func (r *registry) authed(h http.Header, repo string) http.Header {
	r.t.Helper()
	return r.authedFor(h, auth.Scope{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.ActionPull}})
}

// authedFor is authed for any scope.
func (r *registry) authedFor(h http.Header, scope auth.Scope) http.Header {
	r.t.Helper()
	if r.tokens == nil {
		return h
	}
	out := http.Header{}
	for k, v := range h {
		out[k] = v
	}
	tok, err := r.tokens.get(r.adminUser, r.adminPwd, scope)
	if err != nil {
		// Not Fatal: subtests call this with their parent's registry. The
		// request then goes without a token, and its check fails too.
		r.t.Errorf("harness: a token for %s: %v", scope, err)
		return out
	}
	out.Set("Authorization", "Bearer "+tok)
	return out
}

// basicAdmin is a header with the harness admin's Basic credentials.
func (r *registry) basicAdmin() http.Header {
	h := http.Header{}
	req := http.Request{Header: h}
	req.SetBasicAuth(r.adminUser, r.adminPwd)
	return h
}

// startUpstream starts CNCF distribution (the `registry` tool of
// scripts/tools.sh) with in-memory storage on a free loopback port, next to
// the registry under test, whatever SKIFF_IT_BACKEND says: the source of a
// mirror. It has no referrers API, so clients use the referrers tag schema.
func startUpstream(t *testing.T) *registry {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped in -short mode")
	}
	r := &registry{
		t:    t,
		host: net.JoinHostPort("127.0.0.1", freePort(t)),
		bin:  requireTool(t, "registry"),
		log:  &logBuffer{},
	}
	r.config = filepath.Join(t.TempDir(), "upstream.yml")
	conf := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  inmemory: {}
  delete:
    enabled: true
http:
  addr: %s
  secret: skiff-integration-upstream-secret
`, r.host)
	if err := os.WriteFile(r.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.argv = []string{"serve", r.config}
	r.cleanupAndStart()
	return r
}

// cleanupAndStart registers the stop (and the log dump of a failed test),
// then starts the server.
func (r *registry) cleanupAndStart() {
	t := r.t
	t.Helper()
	t.Cleanup(func() {
		r.stop()
		if races := r.log.count("WARNING: DATA RACE"); races > 0 {
			t.Errorf("the server reported %d data race(s); see its log below", races)
		}
		if t.Failed() || os.Getenv("SKIFF_IT_SHOW_LOG") != "" {
			if bad := r.log.grep(problemRE); bad != "" {
				t.Logf("server log lines with errors, warnings or 5xx (%s):\n%s", r.host, bad)
			}
			where := "data " + r.dataDir
			switch {
			case r.bin != "":
				where = r.bin + " " + strings.Join(r.argv, " ")
			case r.bucket != "":
				where = "bucket " + r.bucket + ", table " + r.table
			}
			t.Logf("server log (%s, %s), last %d lines:\n%s", r.host, where, logTailLines, r.log.tail(logTailLines))
		}
	})
	r.start()
}

func (r *registry) binary() string {
	if r.bin != "" {
		return r.bin
	}
	return serverBin
}

func (r *registry) args() []string {
	if r.argv != nil {
		return r.argv
	}
	if serverKind == flavourDistribution {
		return []string{"serve", r.config}
	}
	if r.backend == backendAWS {
		// --create-resources: the first start creates the bucket and table,
		// a restart finds them.
		return append([]string{"serve", "--addr", r.host, "--backend", "aws", "--create-resources"}, r.extra...)
	}
	return append([]string{"serve", "--addr", r.host, "--data", r.dataDir}, r.extra...)
}

// env is the server's environment: the test's (AWS_* endpoints and
// credentials included) plus the bucket and table of the aws backend.
// CNCF distribution reads every REGISTRY_* variable as a configuration
// override, and clients' settings share the prefix (skopeo's
// REGISTRY_AUTH_FILE, in a caller's environment): none reach a server.
func (r *registry) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	if r.backend == backendAWS {
		env = append(env, "SKIFF_S3_BUCKET="+r.bucket, "SKIFF_DYNAMODB_TABLE="+r.table)
	}
	return env
}

// randomName returns 12 random lowercase hex digits.
func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// claimsOutliveProcess reports whether an upload claim of a killed server
// blocks its session until the claim's lease (one minute) runs out. The local
// backend locks its store, so a restarted skiff knows every older claim is
// stale; on the aws backend many processes share the store and a restarted
// one can't tell a dead writer from a live one.
func claimsOutliveProcess() bool {
	return serverKind == flavourSkiff && backend == backendAWS
}

// start runs the server and waits until GET /v2/ answers 200. After kill,
// start brings it back on the same address and data directory.
func (r *registry) start() {
	r.t.Helper()
	if r.external {
		requireOwnServer(r.t, "it starts the server")
	}
	cmd := exec.Command(r.binary(), r.args()...)
	cmd.Env = r.env()
	cmd.Stdout = r.log
	cmd.Stderr = r.log
	setDeathSignal(cmd)
	if r.bucket != "" {
		fmt.Fprintf(r.log, "=== harness: start SKIFF_S3_BUCKET=%s SKIFF_DYNAMODB_TABLE=%s %s %s\n",
			r.bucket, r.table, r.binary(), strings.Join(r.args(), " "))
	} else {
		fmt.Fprintf(r.log, "=== harness: start %s %s\n", r.binary(), strings.Join(r.args(), " "))
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(r.log, "=== harness: server exited: %v\n", err)
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for {
		if ok := r.ping(ctx); ok {
			return
		}
		select {
		case <-exited:
			r.t.Fatalf("server exited before answering GET /v2/; log:\n%s", r.log.tail(logTailLines))
		case <-ctx.Done():
			r.t.Fatalf("server did not answer GET /v2/ (200, or 401 with --auth) within %s; log:\n%s", readyTimeout, r.log.tail(logTailLines))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *registry) ping(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.host+"/v2/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if r.auth {
		// Users may not exist yet (aws: created once the table is there).
		return resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ")
	}
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM and waits; after stopTimeout it sends SIGKILL.
func (r *registry) stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	fmt.Fprintf(r.log, "=== harness: SIGTERM\n")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		r.t.Errorf("server did not exit within %s of SIGTERM; killing it", stopTimeout)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// kill sends SIGKILL, as a crash or an OOM kill would, and waits for the exit.
func (r *registry) kill() {
	if r.external {
		requireOwnServer(r.t, "it kills the server")
	}
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	fmt.Fprintf(r.log, "=== harness: SIGKILL\n")
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Fatalf("kill server: %v", err)
	}
	<-exited
}

// url returns the absolute URL of an API path such as "/v2/".
func (r *registry) url(path string) string { return "http://" + r.host + path }

// freePort asks the kernel for a free loopback port. Another process could
// take it before the server binds it; on a test machine that race is rare
// and shows as a clear start-up failure.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return port
}

// writeDistributionConfig configures CNCF distribution like skiff: loopback,
// filesystem storage (so restarts keep data), deletes on, full index
// validation, and a fixed upload secret so upload URLs survive a restart.
func writeDistributionConfig(t *testing.T, path, host, dataDir string) {
	t.Helper()
	conf := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: skiff-integration-test-secret
validation:
  manifests:
    indexes:
      platforms: all
`, dataDir, host)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logBuffer is an io.Writer safe for the two copy goroutines of exec.Cmd and
// for readers in the test.
type logBuffer struct{ testenv.Buffer }

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

// problemRE matches log lines worth showing first when a test fails: skiff's
// JSON lines at WARN/ERROR or with a 5xx status, distribution's text lines at
// warning/error level, panics and race reports.
var problemRE = regexp.MustCompile(`(?i)"level":"(warn|error)"|"status":5\d\d\b|level=(warn|warning|error|fatal|panic)\b|^panic:|DATA RACE`)

// grep returns the lines matching re, at most logTailLines of them.
func (b *logBuffer) grep(re *regexp.Regexp) string {
	var out []string
	for _, line := range strings.Split(b.String(), "\n") {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	if len(out) > logTailLines {
		out = append(out[:logTailLines], fmt.Sprintf("... (%d more)", len(out)-logTailLines))
	}
	return strings.Join(out, "\n")
}

// tail returns the last n lines.
func (b *logBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
