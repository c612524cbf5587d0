// Package stack starts the AWS-shaped stack on this machine, for a person
// (`make stack`, tools/stack) or a test (test/lambda): the three Lambda
// functions under the Runtime Interface Emulator behind tools/lambdafront
// (CloudFront's stand-in, with the stack's viewer-request function), the
// ingest service (`skiff serve --ingest`, the ECS service's binary, as a
// plain process) when asked, a fresh bucket, table and token key, and an
// admin user, on the AWS stand-ins the environment names.
package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/standin"
)

// Options say what to start.
type Options struct {
	Root   string // the repository
	Ingest bool   // uploads go to the ingest service; false: pure Lambda (4 MiB a request)
	Addr   string // the front door's address ("": any free loopback port)
	Pool   int    // emulators per function (0: 2)
	Logs   string // where every process's log goes
	// Bin holds the binaries (functions/, lambdafront, skiff); Build
	// builds them there first (a second stack can reuse them).
	Bin   string
	Build bool
	// NoAuth runs the functions without authentication; ForwardedRealm
	// sets no SKIFF_REALM (the functions derive the token realm from
	// X-Forwarded-Host, as a stack without a custom domain does).
	NoAuth, ForwardedRealm bool
	LogLevel               string // the functions' LOG_LEVEL (default: $LOG_LEVEL, else info)
}

// Stack is a running stack.
type Stack struct {
	Registry      string // the front door, host:port, plain HTTP
	IngestAddr    string // the ingest service itself ("" without it)
	AdminUser     string
	AdminPassword string
	Logs          string
	Bucket, Table string
	// Invoke are the emulators' invoke URLs by instance ("catalog/0"): a
	// direct call, without the front door and its origin secret.
	Invoke map[string]string

	procs  []*proc
	exited chan string // the name of a process that ended on its own
	keyDir string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start builds (Build) and starts the stack, and returns once its front
// door answers. The AWS stand-ins must be in the environment
// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB).
func Start(ctx context.Context, o Options) (*Stack, error) {
	for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"} {
		if os.Getenv(v) == "" {
			return nil, fmt.Errorf("%s is not set: the stack runs on the AWS stand-ins (tools/standins)", v)
		}
	}
	if o.Pool == 0 {
		o.Pool = 2
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.LogLevel == "" {
		o.LogLevel = os.Getenv("LOG_LEVEL")
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	rie := filepath.Join(o.Root, ".tools", "bin", "aws-lambda-rie")
	if _, err := os.Stat(rie); err != nil {
		if rie, err = exec.LookPath("aws-lambda-rie"); err != nil {
			return nil, fmt.Errorf("aws-lambda-rie is neither in .tools/bin nor on PATH: run make tools")
		}
	}
	if err := os.MkdirAll(filepath.Join(o.Logs, "functions"), 0o755); err != nil {
		return nil, err
	}
	if o.Build {
		if err := build(ctx, o); err != nil {
			return nil, err
		}
	}

	suffix := random(6)
	s := &Stack{Logs: o.Logs, Bucket: "skiff-stack-" + suffix, Table: "skiff-stack-" + suffix,
		AdminUser: "admin", AdminPassword: random(16), exited: make(chan string, 4)}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	// The token key: in a directory of its own, gone with the stack.
	keyDir, err := os.MkdirTemp("", "skiff-stack-key-")
	if err != nil {
		return nil, err
	}
	s.keyDir = keyDir
	keyFile := filepath.Join(keyDir, "token.key")
	cfg := config.Config{Backend: config.BackendAWS, Bucket: s.Bucket, Table: s.Table, CreateResources: true, TokenKeyFile: keyFile}
	stores, err := backend.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	stores.Close()
	if _, err := backend.LoadTokenKey(ctx, cfg); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "SKIFF_S3_BUCKET="+s.Bucket, "SKIFF_DYNAMODB_TABLE="+s.Table,
		"SKIFF_AUTH_KEY_FILE="+keyFile, "LOG_LEVEL="+o.LogLevel, "SKIFF_AUTH="+strconv.FormatBool(!o.NoAuth))
	skiff := filepath.Join(o.Bin, "skiff")
	add := exec.CommandContext(ctx, skiff, "user", "add", s.AdminUser, "--admin", "--password-stdin", "--table", s.Table)
	add.Env, add.Stdin = env, strings.NewReader(s.AdminPassword+"\n")
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("skiff user add: %v\n%s", err, out)
	}
	secret := random(24)

	front := []string{"-functions", filepath.Join(o.Bin, "functions"), "-pool", strconv.Itoa(o.Pool),
		"-log-dir", filepath.Join(o.Logs, "functions"), "-addr", o.Addr, "-addr-file", filepath.Join(o.Logs, "addr"),
		"-auth=" + strconv.FormatBool(!o.NoAuth), "-realm=" + strconv.FormatBool(!o.ForwardedRealm),
		"-origin-secret", secret, "-rie", rie}
	if o.Ingest {
		// The blob function's environment, without its body cap; the
		// realm comes from X-Forwarded-Host, which the front door sets.
		log := filepath.Join(o.Logs, "ingest.log")
		if err := s.start("ingest", append(env, "SKIFF_ORIGIN_SECRET="+secret), log, log, skiff, "serve", "--ingest", "--addr", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		addr, err := s.await("ingest", func() (string, bool) { return match(log, servingRE) })
		if err != nil {
			return nil, err
		}
		s.IngestAddr = addr
		front = append(front, "-ingest", "http://"+addr)
	}
	_ = os.Remove(filepath.Join(o.Logs, "addr"))
	if err := s.start("lambdafront", env, filepath.Join(o.Logs, "lambdafront.out"), filepath.Join(o.Logs, "lambdafront.log"),
		filepath.Join(o.Bin, "lambdafront"), front...); err != nil {
		return nil, err
	}
	s.Registry, err = s.await("lambdafront", func() (string, bool) {
		b, err := os.ReadFile(filepath.Join(o.Logs, "addr"))
		return strings.TrimSpace(string(b)), err == nil && len(bytes.TrimSpace(b)) > 0
	})
	if err != nil {
		return nil, err
	}
	s.Invoke = map[string]string{}
	out, _ := os.ReadFile(filepath.Join(o.Logs, "lambdafront.out"))
	for _, m := range invokeRE.FindAllStringSubmatch(string(out), -1) {
		s.Invoke[m[1]] = m[2]
	}
	ok = true
	return s, nil
}

var (
	servingRE = regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	invokeRE  = regexp.MustCompile(`(?m)^lambdafront: instance (\S+) invoke=(\S+)`)
)

func match(path string, re *regexp.Regexp) (string, bool) {
	b, _ := os.ReadFile(path)
	if m := re.FindSubmatch(b); m != nil {
		return string(m[1]), true
	}
	return "", false
}

// build makes the native function bootstraps (for the emulator),
// lambdafront and skiff in o.Bin.
func build(ctx context.Context, o Options) error {
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = o.Root
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("scripts/functions.sh", "--arch", runtime.GOARCH, "--out", filepath.Join(o.Bin, "functions")); err != nil {
		return err
	}
	if err := run("go", "build", "-o", filepath.Join(o.Bin, "lambdafront"), "./tools/lambdafront"); err != nil {
		return err
	}
	return run("go", "build", "-o", filepath.Join(o.Bin, "skiff"), "./cmd/skiff")
}

// start runs a process of the stack, its output to stdout and stderr
// (files), killed with this process however it ends.
func (s *Stack) start(name string, env []string, stdout, stderr, bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	outf, err := os.Create(stdout)
	if err != nil {
		return err
	}
	defer outf.Close()
	errf := outf
	if stderr != stdout {
		if errf, err = os.Create(stderr); err != nil {
			return err
		}
		defer errf.Close()
	}
	cmd.Stdout, cmd.Stderr = outf, errf
	if err := standin.StartTied(cmd, true); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
		select {
		case s.exited <- name:
		default:
		}
	}()
	s.procs = append(s.procs, p)
	return nil
}

// await polls ready until it says yes, failing if the process ends first
// or after a minute.
func (s *Stack) await(name string, ready func() (string, bool)) (string, error) {
	p := s.procs[len(s.procs)-1]
	deadline := time.Now().Add(time.Minute)
	for {
		if v, ok := ready(); ok {
			return v, nil
		}
		select {
		case <-p.done:
			return "", fmt.Errorf("%s exited at start; logs in %s", name, s.Logs)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not ready after a minute; logs in %s", name, s.Logs)
		}
	}
}

// Exited names a process of the stack that ended on its own.
func (s *Stack) Exited() <-chan string { return s.exited }

// Stop ends every process: the front door first (it stops its emulators),
// SIGTERM, then SIGKILL after 10 s.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	s.procs = nil
	if s.keyDir != "" {
		_ = os.RemoveAll(s.keyDir)
	}
}

// WriteEnv writes the stack's coordinates for a person or a script:
// REGISTRY, ADMIN_USER, ADMIN_PASSWORD, STACK_INGEST, INGEST, STACK_LOGS.
func (s *Stack) WriteEnv(path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "REGISTRY=%s\nADMIN_USER=%s\nADMIN_PASSWORD=%s\n", s.Registry, s.AdminUser, s.AdminPassword)
	if s.IngestAddr != "" {
		fmt.Fprintf(&b, "STACK_INGEST=1\nINGEST=%s\n", s.IngestAddr)
	} else {
		b.WriteString("STACK_INGEST=0\n")
	}
	fmt.Fprintf(&b, "STACK_LOGS=%s\n", s.Logs)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
