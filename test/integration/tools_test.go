package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/testenv"
)

// toolTimeout bounds one client command; a hang shows as a failure with the
// command line instead of eating the whole go test -timeout.
const toolTimeout = 5 * time.Minute

// toolbox runs client tools for one test with their configuration isolated
// in a temp HOME: no tool reads or writes the developer's credentials or
// registry settings, and tests can't leak settings into each other.
// A toolbox belongs to the test that made it: it fails that test, so don't
// hand it to a subtest (make one per subtest instead).
type toolbox struct {
	t     *testing.T
	dir   string // working directory for relative paths
	env   []string
	paths map[string]string
	// podmanDirs are podman's storage, run, tmp and network directories
	// (setupPodman), when the toolbox has podman.
	podmanDirs map[string]string
}

// isolatedVars are replaced in the tools' environment.
var isolatedVars = []string{
	"HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
	"DOCKER_CONFIG", "REGCTL_CONFIG", "REGISTRY_AUTH_FILE", "CONTAINERS_REGISTRIES_CONF",
	"CONTAINERS_AUTH_FILE", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINER_HOST",
	"CONTAINER_CONNECTION", "CONTAINER_SSHKEY", "NO_PROXY", "no_proxy",
}

// newToolbox finds the named tools (failing or skipping the test when one is
// missing, see requireTool) and prepares an isolated environment.
func newToolbox(t *testing.T, tools ...string) *toolbox {
	t.Helper()
	tb := &toolbox{t: t, dir: t.TempDir(), paths: map[string]string{}}
	for _, name := range tools {
		tb.paths[name] = requireTool(t, name)
	}
	home := filepath.Join(tb.dir, "home")
	runtime := filepath.Join(home, "run")
	for _, d := range []string{home, runtime, filepath.Join(home, "registries.d")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	registriesConf := filepath.Join(home, "registries.conf")
	if err := os.WriteFile(registriesConf, []byte("unqualified-search-registries = []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !contains(isolatedVars, name) {
			env = append(env, kv)
		}
	}
	tb.env = append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_RUNTIME_DIR="+runtime,
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"),
		"CONTAINERS_REGISTRIES_CONF="+registriesConf,
		"NO_PROXY=127.0.0.1,localhost,localhost.localstack.cloud", // LocalStack's presigned URLs name the last
		"no_proxy=127.0.0.1,localhost,localhost.localstack.cloud",
	)
	if _, ok := tb.paths["podman"]; ok {
		tb.setupPodman()
	}
	return tb
}

// setupPodman gives podman a world of its own in the toolbox: image
// storage (vfs: no fuse or overlay mounts needed), run and tmp dirs,
// containers.conf and storage.conf (CONTAINERS_CONF and
// CONTAINERS_STORAGE_CONF replace the host's /etc and /usr/share files),
// a signature policy accepting anything (podmanTransfer passes it, so the
// host's /etc/containers/policy.json is never read), and an empty
// $REGISTRY_AUTH_FILE: podman 4.3 refuses a pull or push whose auth file
// is named but doesn't exist. One host file remains shared: podman 4.3
// keeps its blob info cache (which blob is known where, used to mount
// blobs across repositories) in /var/lib/containers/cache when root, as
// skopeo does, with no flag to move it.
func (tb *toolbox) setupPodman() {
	tb.t.Helper()
	d := filepath.Join(tb.dir, "podman")
	// podman refuses a runroot longer than 50 characters (it holds
	// sockets), which a t.TempDir path of a subtest easily is.
	run, err := os.MkdirTemp("", "skiff-podman-")
	if err == nil && len(run) > 36 {
		os.Remove(run)
		run, err = os.MkdirTemp("/tmp", "skiff-podman-")
	}
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(func() { os.RemoveAll(run) })
	tb.podmanDirs = map[string]string{
		"root": filepath.Join(d, "root"), "runroot": filepath.Join(run, "run"),
		"tmp": filepath.Join(run, "tmp"), "networks": filepath.Join(d, "networks"),
	}
	for _, dir := range tb.podmanDirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			tb.t.Fatal(err)
		}
	}
	files := map[string]string{
		"containers.conf": fmt.Sprintf("[engine]\nevents_logger = \"none\"\nimage_copy_tmp_dir = %q\n"+
			"[network]\nnetwork_config_dir = %q\n", tb.podmanDirs["tmp"], tb.podmanDirs["networks"]),
		"storage.conf": fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			tb.podmanDirs["root"], tb.podmanDirs["runroot"]),
		"policy.json": `{"default":[{"type":"insecureAcceptAnything"}]}`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o600); err != nil {
			tb.t.Fatal(err)
		}
	}
	if err := os.WriteFile(tb.getenv("REGISTRY_AUTH_FILE"), []byte(`{"auths":{}}`), 0o600); err != nil {
		tb.t.Fatal(err)
	}
	tb.env = append(tb.env,
		"CONTAINERS_CONF="+filepath.Join(d, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(d, "storage.conf"),
	)
}

// podmanGlobal are podman's isolation flags (setupPodman's directories,
// said again on the command line so no configuration file can move them).
// Every podman command of a toolbox gets them.
func (tb *toolbox) podmanGlobal() []string {
	return []string{"--root", tb.podmanDirs["root"], "--runroot", tb.podmanDirs["runroot"],
		"--storage-driver", "vfs", "--tmpdir", tb.podmanDirs["tmp"], "--events-backend", "none",
		"--network-config-dir", tb.podmanDirs["networks"]}
}

// podmanTransfer is the arguments of `podman pull` or `podman push` (verb)
// of refs: plain HTTP (--tls-verify=false tries HTTPS, then HTTP) and the
// toolbox's own signature policy.
func (tb *toolbox) podmanTransfer(verb string, refs ...string) []string {
	return append([]string{verb, "--tls-verify=false",
		"--signature-policy", filepath.Join(tb.dir, "podman", "policy.json")}, refs...)
}

// requireTool returns the path of a client tool (testenv.Tool: .tools/bin,
// then PATH; a missing one skips, or fails under CI). A run aimed at
// SKIFF_IT_REGISTRY fails on a missing tool: a skip would pass it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	if external != nil && testenv.LookTool(name) == "" {
		t.Fatalf("%s not found in .tools/bin or PATH (with SKIFF_IT_REGISTRY a missing tool is a failure): run `make tools`", name)
	}
	return testenv.Tool(t, name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// run runs a tool in the toolbox directory and returns its stdout. A non-zero
// exit fails the test with the command line, stdout and stderr.
func (tb *toolbox) run(name string, args ...string) string {
	tb.t.Helper()
	stdout, stderr, err := tb.exec(name, args...)
	if err != nil {
		tb.t.Fatalf("command failed: %s\nerror: %v\nstdout:\n%s\nstderr:\n%s",
			commandLine(name, args), err, indent(stdout), indent(stderr))
	}
	return stdout
}

// exec runs a tool and returns its output and error without failing the test.
func (tb *toolbox) exec(name string, args ...string) (stdout, stderr string, err error) {
	tb.t.Helper()
	return tb.execEnv(nil, name, args...)
}

// runEnv is run with extra environment variables (NAME=value) for this
// command only.
func (tb *toolbox) runEnv(env []string, name string, args ...string) string {
	tb.t.Helper()
	stdout, stderr, err := tb.execEnv(env, name, args...)
	if err != nil {
		tb.t.Fatalf("command failed: %s %s\nerror: %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(env, " "), commandLine(name, args), err, indent(stdout), indent(stderr))
	}
	return stdout
}

// execEnv is exec with extra environment variables for this command only.
func (tb *toolbox) execEnv(env []string, name string, args ...string) (stdout, stderr string, err error) {
	tb.t.Helper()
	return tb.execFull(env, nil, name, args...)
}

// runStdin is run with stdin (a password, for a login).
func (tb *toolbox) runStdin(stdin, name string, args ...string) string {
	tb.t.Helper()
	stdout, stderr, err := tb.execStdin(stdin, name, args...)
	if err != nil {
		tb.t.Fatalf("command failed: %s  (stdin: %d bytes)\nerror: %v\nstdout:\n%s\nstderr:\n%s",
			commandLine(name, args), len(stdin), err, indent(stdout), indent(stderr))
	}
	return stdout
}

// execStdin is exec with stdin. The log line shows its size, never its text.
func (tb *toolbox) execStdin(stdin, name string, args ...string) (stdout, stderr string, err error) {
	tb.t.Helper()
	return tb.execFull(nil, strings.NewReader(stdin), name, args...)
}

// skopeoGlobal are skopeo's isolation flags: no signature policy, no
// registries.d lookups, so the host's /etc/containers files can't change the
// outcome. Every skopeo command of a toolbox gets them.
func (tb *toolbox) skopeoGlobal() []string {
	return []string{"--insecure-policy", "--registries.d", filepath.Join(tb.dir, "home", "registries.d")}
}

func (tb *toolbox) execFull(env []string, stdin io.Reader, name string, args ...string) (stdout, stderr string, err error) {
	tb.t.Helper()
	path, ok := tb.paths[name]
	if !ok {
		tb.t.Fatalf("harness bug: tool %q was not requested in newToolbox", name)
	}
	argv := args
	switch name {
	case "skopeo":
		argv = append(tb.skopeoGlobal(), args...)
	case "podman":
		argv = append(tb.podmanGlobal(), args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, argv...)
	cmd.Dir = tb.dir
	cmd.Env = append(append([]string{}, tb.env...), env...)
	cmd.Stdin = stdin
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	start := time.Now()
	err = cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w", toolTimeout, err)
	}
	prefix := ""
	if len(env) > 0 {
		prefix = strings.Join(env, " ") + " "
	}
	suffix := ""
	if stdin != nil {
		suffix = " < (stdin)"
	}
	tb.t.Logf("$ %s%s%s  (%s)", prefix, commandLine(name, argv), suffix, time.Since(start).Round(time.Millisecond))
	return outBuf.String(), errBuf.String(), err
}

func commandLine(name string, args []string) string {
	parts := []string{name}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = fmt.Sprintf("%q", a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (empty)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// skopeo runs skopeo (with skopeoGlobal's isolation flags, as every skopeo
// command of a toolbox).
func (tb *toolbox) skopeo(args ...string) string {
	tb.t.Helper()
	return tb.run("skopeo", args...)
}

// regctlPlainHTTP tells regctl that host speaks plain HTTP, plus extra
// `regctl registry set` flags.
func (tb *toolbox) regctlPlainHTTP(host string, extra ...string) {
	tb.t.Helper()
	tb.run("regctl", append([]string{"registry", "set", "--tls", "disabled"}, append(extra, host)...)...)
}

// storeCredentials saves user's credentials for host where the clients
// read what their logins save: the auths of $DOCKER_CONFIG/config.json
// (crane, regctl, oras and cosign read it) and of $REGISTRY_AUTH_FILE
// (skopeo, podman), both in the toolbox's HOME.
func (tb *toolbox) storeCredentials(host, user, password string) {
	tb.t.Helper()
	entry := map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	for _, file := range []string{filepath.Join(tb.getenv("DOCKER_CONFIG"), "config.json"), tb.getenv("REGISTRY_AUTH_FILE")} {
		conf := map[string]any{}
		if raw, err := os.ReadFile(file); err == nil {
			if err := json.Unmarshal(raw, &conf); err != nil {
				tb.t.Fatalf("%s: %v", file, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			tb.t.Fatal(err)
		}
		auths, _ := conf["auths"].(map[string]any)
		if auths == nil {
			auths = map[string]any{}
		}
		auths[host] = entry
		conf["auths"] = auths
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			tb.t.Fatal(err)
		}
		b, err := json.Marshal(conf)
		if err != nil {
			tb.t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o600); err != nil {
			tb.t.Fatal(err)
		}
	}
}

// getenv reads the toolbox's environment (the last value wins, as in exec).
func (tb *toolbox) getenv(name string) string {
	v := ""
	for _, kv := range tb.env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}
