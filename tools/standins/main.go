// Command standins runs a command with the AWS stand-ins up: the in-memory
// S3 (gofakes3, served from this process) and dynalite (DynamoDB, a child
// process, installed from scripts/standins on first use), each on a free
// loopback port, and stops them afterwards whatever happens:
//
//	go run ./tools/standins [-log-dir DIR] CMD [ARGS...]
//	go run ./tools/standins -serve      # until ^C, for a person
//
// CMD gets AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB, dummy
// credentials, AWS_REGION and SKIFF_REQUIRE_STANDINS=1 (a test that needs
// a stand-in fails rather than skips) in its environment; standins exits
// with CMD's status. `make test` runs the suite under it, so the stand-ins
// start once. The stand-ins' logs go to DIR (default results/standins);
// when CMD fails, their last lines are printed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-registry/skiff/internal/standin"
)

func main() {
	logDir := flag.String("log-dir", "results/standins", "where the stand-ins' logs go")
	s3Addr := flag.String("s3-addr", "127.0.0.1:0", "the S3 stand-in's address")
	dynamoPort := flag.Int("dynalite-port", 0, "dynalite's port (0: a free one)")
	serve := flag.Bool("serve", false, "run the stand-ins until interrupted and print their environment")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: standins [flags] CMD [ARGS...]\n       standins -serve\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *serve == (flag.NArg() > 0) {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(*logDir, *s3Addr, *dynamoPort, *serve, flag.Args()))
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "standins: "+format+"\n", args...) }

func run(logDir, s3Addr string, dynamoPort int, serve bool, args []string) int {
	root, err := standin.RepoRoot()
	if err != nil {
		logf("%v", err)
		return 2
	}
	if !filepath.IsAbs(logDir) {
		logDir = filepath.Join(root, logDir)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	start := time.Now()

	// Objects live on this heap and the stand-ins share the machine with
	// the tests: collect early (the heap is nearly all byte slices, which
	// the collector does not scan) and give freed memory back soon after
	// buckets are emptied.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(20)
	}
	go func() {
		for range time.Tick(10 * time.Second) {
			debug.FreeOSMemory()
		}
	}()
	s3log, err := os.Create(filepath.Join(logDir, "s3standin.log"))
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer s3log.Close()
	s3, err := standin.StartS3(s3Addr, log.New(s3log, "s3standin: ", log.LstdFlags))
	if err != nil {
		logf("the S3 stand-in did not start: %v", err)
		return 1
	}
	defer s3.Close(5 * time.Second)
	dyn, err := standin.StartDynalite(standin.DynaliteOptions{
		Root: root, Port: dynamoPort, LogFile: filepath.Join(logDir, "dynalite.log"), DieWithParent: true,
	})
	if err != nil {
		logf("dynalite did not start: %v", err)
		return 1
	}
	defer dyn.Stop()
	env := append(standin.Env(s3.URL, dyn.URL), "SKIFF_REQUIRE_STANDINS=1")
	logf("up in %s: %s (logs in %s)", time.Since(start).Round(10*time.Millisecond), strings.Join(env[2:], " "), logDir)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if serve {
		for _, e := range env {
			fmt.Println("export " + e)
		}
		<-ctx.Done()
		logf("stopping")
		return 0
	}

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		logf("%v", err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// A ^C reaches the command too (same process group); a SIGTERM
		// sent to this process alone is passed on.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err = <-done
	}
	rc := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		rc = exit.ExitCode()
		if rc < 0 {
			rc = 128 + int(exit.Sys().(syscall.WaitStatus).Signal())
		}
	case err != nil:
		logf("%v", err)
		rc = 1
	}
	if rc != 0 {
		logf("%s exited %d", strings.Join(args, " "), rc)
		for _, f := range []string{s3log.Name(), dyn.LogFile} {
			if b, err := os.ReadFile(f); err == nil && len(bytes.TrimSpace(b)) > 0 {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				lines = lines[max(0, len(lines)-20):]
				logf("last lines of %s:\n%s", filepath.Base(f), strings.Join(lines, "\n"))
			}
		}
	}
	return rc
}
