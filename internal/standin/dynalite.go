package standin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dynalite is a dynalite process (DynamoDB on Node.js, pinned in
// scripts/standins/package.json) on a loopback port.
type Dynalite struct {
	URL     string // http://127.0.0.1:PORT
	LogFile string // its output
	cmd     *exec.Cmd
	exited  chan struct{}
}

// DynaliteOptions says where and how to start dynalite.
type DynaliteOptions struct {
	Root    string // the repository (scripts/standins is in it)
	Port    int    // 0: a free port
	LogFile string // "": a temporary file, removed once dynalite answers
	// DieWithParent kills dynalite when this process ends, however it
	// ends (Linux): for tests, which have no place to stop it.
	DieWithParent bool
}

// NodeMissing is returned when node or npm is not on PATH.
var NodeMissing = errors.New("node and npm (Node.js 20+) are needed for dynalite, the DynamoDB stand-in")

// InstallDynalite installs the pinned dynalite into scripts/standins/
// node_modules unless it is there: npm ci (the lock file), npm install if
// that fails. Test processes that start at once take turns on a lock file.
func InstallDynalite(root string) error {
	dir := filepath.Join(root, "scripts", "standins")
	cli := filepath.Join(dir, "node_modules", "dynalite", "cli.js")
	if _, err := os.Stat(cli); err == nil {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return NodeMissing
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(cli); err == nil {
		return nil // another process installed it meanwhile
	}
	npm := func(sub string) ([]byte, error) {
		cmd := exec.Command("npm", sub, "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	if out, err := npm("ci"); err != nil {
		if out2, err2 := npm("install"); err2 != nil {
			return fmt.Errorf("install dynalite in %s: npm ci: %v\n%s\nnpm install: %v\n%s", dir, err, out, err2, out2)
		}
	}
	return nil
}

// StartDynalite installs (InstallDynalite) and starts dynalite, and waits
// until it answers. A free port picked at random can be taken before
// dynalite binds it: then it tries another, three times in all.
func StartDynalite(o DynaliteOptions) (*Dynalite, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return nil, NodeMissing
	}
	if err := InstallDynalite(o.Root); err != nil {
		return nil, err
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		port := o.Port
		if port == 0 {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			port = p
		}
		d, err := startDynalite(o, port)
		if err == nil {
			return d, nil
		}
		last = err
		if o.Port != 0 {
			break
		}
	}
	return nil, last
}

func startDynalite(o DynaliteOptions, port int) (*Dynalite, error) {
	logFile := o.LogFile
	var out *os.File
	var err error
	if logFile == "" {
		out, err = os.CreateTemp("", "skiff-dynalite-*.log")
	} else {
		out, err = os.Create(logFile)
	}
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	// dynalite-server.js runs dynalite's command line with a guard against
	// clients that abort a request (see there).
	cmd := exec.Command("node", filepath.Join(o.Root, "scripts", "standins", "dynalite-server.js"),
		"--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	d := &Dynalite{URL: fmt.Sprintf("http://127.0.0.1:%d", port), LogFile: out.Name(), cmd: cmd, exited: make(chan struct{})}
	if err := StartTied(cmd, o.DieWithParent); err != nil {
		return nil, fmt.Errorf("start dynalite: %w", err)
	}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for !d.answers() {
		select {
		case <-d.exited:
			b, _ := os.ReadFile(d.LogFile)
			return nil, fmt.Errorf("dynalite exited at start on port %d: %s", port, bytes.TrimSpace(b))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = d.Stop()
			return nil, fmt.Errorf("dynalite did not answer on %s within 30 s (log %s)", d.URL, d.LogFile)
		}
	}
	if o.LogFile == "" {
		// Started for a test process, which has no place to clean up: the
		// log goes (dynalite keeps writing to the unlinked file).
		_ = os.Remove(d.LogFile)
		d.LogFile = ""
	}
	return d, nil
}

// answers: a ListTables gets a table list back.
func (d *Dynalite) answers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL+"/", strings.NewReader("{}"))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("X-Amz-Date", "20200101T000000Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+AccessKey+"/20200101/"+Region+
		"/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return strings.Contains(b.String(), `"TableNames"`)
}

// Stop ends dynalite: SIGTERM, then SIGKILL after 5 s.
func (d *Dynalite) Stop() error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
