// Command skiff runs the Skiff registry locally (`skiff serve`) and holds
// the operator's tools.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "skiff:", err)
		os.Exit(1)
	}
}

// run executes the command line args (without the program name). Help and
// command output go to stdout, logs to stderr; an error is returned, not
// printed.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := newRootCommand(getenv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// newRootCommand builds the command tree. Errors are the caller's to
// print, as one line without the usage.
func newRootCommand(getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "skiff",
		Short: "Skiff, an OCI registry, and its operator's tools",
		Long: `Skiff is an OCI registry. skiff serve runs it (embedded storage by default,
or S3 and DynamoDB); copy brings images in (chosen platforms of an index, with
their signatures); gc, policy, retention, index and user are the operator's tools.`,
		Args:               cobra.ArbitraryArgs,
		RunE:               needCommand,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		SilenceErrors:      true,
		SilenceUsage:       true,
	}
	root.AddCommand(
		newServeCommand(getenv),
		newGCCommand(getenv),
		newCopyCommand(),
		newMirrorCommand(getenv),
		newPolicyCommand(getenv, func(cmd *cobra.Command, pa policyArgs) error { return runPolicy(cmd, pa, getenv) }),
		newRetentionCommand(getenv, func(cmd *cobra.Command, ra retentionArgs) error { return runRetention(cmd, ra, getenv) }),
		newIndexCommand(getenv, func(cmd *cobra.Command, ia indexArgs) error { return runIndex(cmd, ia, getenv) }),
		newUserCommand(getenv, func(cmd *cobra.Command, ua userArgs) error { return runUser(cmd, ua, getenv) }),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version, the VCS revision and the Go version it was built from",
			Args:  wantArgs(0, "no arguments"),
			RunE: func(cmd *cobra.Command, _ []string) error {
				bi, _ := debug.ReadBuildInfo()
				_, err := fmt.Fprint(cmd.OutOrStdout(), versionText(bi))
				return err
			},
		},
	)
	return root
}

// needCommand is the RunE of skiff and of its command groups, for a
// command line without a known command, which cobra alone answers with the
// help and exit 0: it names the mistake instead, and "help" (skiff policy
// help) prints the help. Those commands let unknown flags through
// (FParseErrWhitelist): they are the flags of the command meant.
func needCommand(cmd *cobra.Command, args []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	switch {
	case len(args) == 0:
		return fmt.Errorf("%s needs a command: %s (see %[1]s --help)", cmd.CommandPath(), strings.Join(names, ", "))
	case args[0] == "help":
		return cmd.Help()
	}
	return fmt.Errorf("unknown %s command %q (want %s)", cmd.Name(), args[0], strings.Join(names, ", "))
}

// wantArgs checks that a command has n positional arguments, which what
// names.
func wantArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
			return nil
		case len(args) == 0:
			return fmt.Errorf("%s takes %s, got none", cmd.CommandPath(), what)
		}
		return fmt.Errorf("%s takes %s, got %d: %q", cmd.CommandPath(), what, len(args), args)
	}
}

// versionText is what skiff version prints: the module version (v1.2.3,
// or (devel) for a build from a work tree), the VCS revision and whether
// the tree had changes, and the Go version. bi is nil when the binary
// carries no build information.
func versionText(bi *debug.BuildInfo) string {
	if bi == nil {
		return fmt.Sprintf("skiff (unknown version)\nrevision: unknown\ngo: %s\n", runtime.Version())
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	revision, modified, at := "unknown (built without VCS information)", "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		case "vcs.time":
			at = "\ncommitted: " + s.Value
		}
	}
	return fmt.Sprintf("skiff %s\nrevision: %s%s%s\ngo: %s\n", version, revision, modified, at, bi.GoVersion)
}
