// Command stack runs the whole AWS-shaped stack on this machine in the
// foreground, for a person or a script (`make stack`, which runs it under
// tools/standins): the three functions under the Lambda emulator, the
// front door, the ingest service and an admin (internal/stack), on the
// AWS stand-ins the environment names. Once everything answers it writes REGISTRY,
// ADMIN_USER, ADMIN_PASSWORD, STACK_INGEST, INGEST and STACK_LOGS to
// SKIFF_STACK_ENV (default ./stack.env) and prints "stack: ready"; SIGINT
// or SIGTERM stops everything and removes the file.
//
// Env: STACK_INGEST=0 runs pure Lambda (uploads to the blob function,
// 4 MiB a request); STACK_ADDR the front door's address (default any free
// loopback port); STACK_POOL emulators per function (2); STACK_LOGS where
// the logs go (results/stack); STACK_BIN where the binaries are built, and
// STACK_SKIP_BUILD=1 reuses them; SKIFF_AUTH=false no authentication;
// STACK_REALM=forwarded no SKIFF_REALM; LOG_LEVEL the functions' level.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/skiff-registry/skiff/internal/stack"
	"github.com/skiff-registry/skiff/internal/standin"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := standin.RepoRoot()
	if err != nil {
		return err
	}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	ingest := env("STACK_INGEST", "1")
	if ingest != "0" && ingest != "1" {
		return fmt.Errorf("STACK_INGEST=%s: want 1 (the default) or 0", ingest)
	}
	pool, err := strconv.Atoi(env("STACK_POOL", "2"))
	if err != nil {
		return fmt.Errorf("STACK_POOL: %w", err)
	}
	logs, _ := filepath.Abs(env("STACK_LOGS", filepath.Join(root, "results", "stack")))
	bin := os.Getenv("STACK_BIN")
	if bin == "" {
		tmp, err := os.MkdirTemp("", "skiff-stack-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		bin = tmp
	}
	envFile, _ := filepath.Abs(env("SKIFF_STACK_ENV", filepath.Join(root, "stack.env")))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "stack: building and starting; logs in", logs)
	st, err := stack.Start(ctx, stack.Options{
		Root: root, Ingest: ingest == "1", Addr: os.Getenv("STACK_ADDR"), Pool: pool, Logs: logs,
		Bin: bin, Build: os.Getenv("STACK_SKIP_BUILD") != "1",
		NoAuth: os.Getenv("SKIFF_AUTH") == "false", ForwardedRealm: os.Getenv("STACK_REALM") == "forwarded",
		LogLevel: os.Getenv("LOG_LEVEL"),
	})
	if err != nil {
		return err
	}
	defer st.Stop()
	if err := st.WriteEnv(envFile); err != nil {
		return err
	}
	defer os.Remove(envFile)
	mode := "pure Lambda: uploads to the blob function, 4 MiB per request"
	if st.IngestAddr != "" {
		mode = "uploads to the ingest service at " + st.IngestAddr
	}
	fmt.Fprintf(os.Stderr, "stack: ready: http://%s (%s); %s's password and the rest in %s; Ctrl-C stops it\n", st.Registry, mode, st.AdminUser, envFile)
	fmt.Println("stack: ready")
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "stack: stopping")
		return nil
	case name := <-st.Exited():
		return fmt.Errorf("%s of the stack exited; logs in %s", name, logs)
	}
}
