package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/internal/standin"
)

// childEnv, set in a child's environment, makes this package's init serve
// the S3 stand-in instead of running the tests.
const childEnv = "SKIFF_TESTENV_S3_CHILD"

func init() {
	if os.Getenv(childEnv) != "1" {
		return
	}
	// The child: serve, say where on stdout, and end when the parent does
	// (its end of stdin closes; Pdeathsig is the backstop).
	s, err := standin.StartS3("127.0.0.1:0", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv: S3 stand-in:", err)
		os.Exit(1)
	}
	fmt.Println(s.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = s.Close(time.Second)
	os.Exit(0)
}

func startS3Child() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"=1", "GOGC=20")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := standin.StartTied(cmd, true); err != nil {
		return "", fmt.Errorf("start the S3 stand-in: %w", err)
	}
	keep = append(keep, stdin) // open for the process's life
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("the S3 stand-in did not start: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return strings.TrimSpace(line), nil
}

// keep holds the children's stdin pipes: closed, they end.
var keep []io.WriteCloser
