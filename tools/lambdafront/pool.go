package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// fnSpec is what differs between the functions, as in the CDK stack
// (infra/stacks/functions.go): memory in MB and the timeout in seconds,
// and the CloudFront origin's read timeout.
type fnSpec struct {
	memory, timeout int
	readTimeout     time.Duration
}

var fnSpecs = map[string]fnSpec{
	"manifest": {memory: 256, timeout: 20, readTimeout: 30 * time.Second},
	"blob":     {memory: 512, timeout: 55, readTimeout: 60 * time.Second},
	"catalog":  {memory: 256, timeout: 20, readTimeout: 30 * time.Second},
}

// invokePath is the emulator's Invoke API path.
const invokePath = "/2015-03-31/functions/function/invocations"

// instance is one aws-lambda-rie process running one function's
// bootstrap. RIE serves one invocation at a time.
type instance struct {
	fn      string
	n       int
	invoke  string // the Invoke API URL
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error // why the process ended, once exited is closed
}

func (in *instance) String() string { return fmt.Sprintf("%s/%d", in.fn, in.n) }

// pool runs a fixed number of instances per function and hands each
// invocation to a free one, as Lambda runs one request per execution
// environment.
type pool struct {
	free   map[string]chan *instance
	all    []*instance
	client *http.Client
}

type poolConfig struct {
	rie       string            // the aws-lambda-rie binary
	fnDir     string            // holds <fn>/bootstrap
	size      int               // instances per function
	env       []string          // the functions' environment
	logDir    string            // each instance's output: <logDir>/<fn>-<n>.log
	extraEnv  map[string]string // added to env for every function
	startWait time.Duration
}

// startPool starts every instance and waits until each emulator accepts
// connections. The bootstraps themselves start on their first invocation
// (a cold start), as in Lambda.
func startPool(ctx context.Context, c poolConfig) (*pool, error) {
	// No timeout on the client: an invocation's answer can take the
	// function's whole timeout, which each call's context bounds.
	p := &pool{free: map[string]chan *instance{}, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	for _, fn := range functions {
		p.free[fn] = make(chan *instance, c.size)
		for n := range c.size {
			in, err := startInstance(ctx, c, fn, n)
			if err != nil {
				p.stop()
				return nil, err
			}
			p.all = append(p.all, in)
			p.free[fn] <- in
		}
	}
	return p, nil
}

func startInstance(ctx context.Context, c poolConfig, fn string, n int) (*instance, error) {
	bootstrap, err := filepath.Abs(filepath.Join(c.fnDir, fn, "bootstrap"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bootstrap); err != nil {
		return nil, fmt.Errorf("function %s: %w (build it with scripts/functions.sh --arch amd64 --out DIR)", fn, err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	emu, api := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	in := &instance{fn: fn, n: n, invoke: "http://" + emu + invokePath,
		logPath: filepath.Join(c.logDir, fmt.Sprintf("%s-%d.log", fn, n)), exited: make(chan struct{})}
	logFile, err := os.Create(in.logPath)
	if err != nil {
		return nil, err
	}
	spec := fnSpecs[fn]
	env := append([]string{}, c.env...)
	for k, v := range c.extraEnv {
		env = append(env, k+"="+v)
	}
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME=skiff-"+fn,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(spec.memory),
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(spec.timeout),
	)
	cmd := exec.Command(c.rie, "--runtime-interface-emulator-address", emu, "--runtime-api-address", api, bootstrap)
	// The bootstrap's working directory, as /var/task is in Lambda.
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group: stopping an instance stops its bootstrap too.
	// Pdeathsig: an emulator does not outlive a killed lambdafront.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", c.rie, err)
	}
	in.cmd = cmd
	go func() {
		in.err = cmd.Wait()
		logFile.Close()
		close(in.exited)
	}()
	deadline := time.Now().Add(c.startWait)
	for {
		conn, err := net.DialTimeout("tcp", emu, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return in, nil
		}
		select {
		case <-in.exited:
			return nil, fmt.Errorf("emulator %s exited at start (%v); see %s", in, in.err, in.logPath)
		case <-ctx.Done():
			in.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			in.stop()
			return nil, fmt.Errorf("emulator %s did not listen on %s within %s; see %s", in, emu, c.startWait, in.logPath)
		}
	}
}

// freePorts asks the kernel for n free loopback ports. Another process
// could take one before the emulator binds it; that shows as a start
// failure naming the instance.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// errNoInstance is a request that found no free instance before its
// deadline.
var errNoInstance = errors.New("no function instance became free")

// invoke runs one invocation of fn with payload on a free instance and
// returns the emulator's status and body. Waiting for a free instance ends
// with ctx; an invocation, once started, runs to its end as in Lambda (a
// viewer that hangs up, or CloudFront's read timeout, does not stop it):
// its instance becomes free again only then.
func (p *pool) invoke(ctx context.Context, fn string, payload []byte) (status int, body []byte, in *instance, err error) {
	free, ok := p.free[fn]
	if !ok {
		return 0, nil, nil, fmt.Errorf("no function %q", fn)
	}
	select {
	case in = <-free:
	case <-ctx.Done():
		return 0, nil, nil, fmt.Errorf("%w: %w", errNoInstance, ctx.Err())
	}
	select {
	case <-in.exited:
		free <- in
		return 0, nil, in, fmt.Errorf("instance %s has exited (%v); see %s", in, in.err, in.logPath)
	default:
	}
	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { free <- in }()
		// The emulator enforces the function's timeout; this bounds a hung
		// emulator.
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(fnSpecs[fn].timeout+10)*time.Second)
		defer cancel()
		st, b, err := p.call(callCtx, in, payload)
		done <- result{st, b, err}
	}()
	select {
	case r := <-done:
		return r.status, r.body, in, r.err
	case <-ctx.Done():
		return 0, nil, in, ctx.Err()
	}
}

// call posts one event to an instance's Invoke API.
func (p *pool) call(ctx context.Context, in *instance, payload []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.invoke, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// stop ends every instance.
func (p *pool) stop() {
	var wg sync.WaitGroup
	for _, in := range p.all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.stop()
		}()
	}
	wg.Wait()
}

// stop sends SIGTERM to the instance's process group, then SIGKILL after
// three seconds.
func (in *instance) stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	pgid := in.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-in.exited
	}
	// The bootstrap may outlive the emulator it belonged to.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
