// Command skiff runs the Skiff registry locally (`skiff serve`) and holds
// the operator's tools.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: skiff <command> [flags]

commands:
  serve     run the registry (embedded storage by default);
            --operator-api serves the operator API under /v2/_skiff/
  policy    per-repository index policy: set, get, list, delete, history
            (skiff policy help)
  index     index status REPO:TAG|REPO@DIGEST: which platforms a partial
            mirror holds (skiff index help)
  user      users, robots and their grants: add, grant, revoke, list,
            delete, passwd (skiff user help)
  version   print the version

Run skiff <command> -h for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "skiff:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stderr)
	case "policy":
		return policyCommand(ctx, args[1:], getenv, stdout, stderr)
	case "index":
		return indexCommand(ctx, args[1:], getenv, stdout, stderr)
	case "user":
		return userCommand(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "skiff", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
