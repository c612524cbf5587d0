package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-registry/skiff/internal/copier"
	"github.com/skiff-registry/skiff/internal/mirror"
)

func newMirrorCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Mirror lists of images: run a mirror set file, or keep rules for the registry's sync",
		Long: `A mirror set is a YAML file of rules, each a source (an image, or a repository
with a tags pattern), a target, and what to bring: the platforms of an index,
referrers, cosign's digest tags. skiff mirror run copies every rule with skiff copy
(push mode, from where you run it); skiff mirror rule keeps named rules in the
registry for its scheduled sync (pull mode).`,
		Args:               cobra.ArbitraryArgs,
		RunE:               needCommand,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
	}
	cmd.AddCommand(newMirrorRunCommand(), newMirrorRuleCommand(getenv, func(cmd *cobra.Command, ma mirrorRuleArgs) error { return runMirrorRule(cmd, ma, getenv) }))
	return cmd
}

// mirrorRunArgs is a parsed `skiff mirror run` command line.
type mirrorRunArgs struct {
	jobs     int
	insecure bool
	json     bool
	check    bool
}

func newMirrorRunCommand() *cobra.Command {
	var ma mirrorRunArgs
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Copy every rule of a mirror set, then summarize",
		Long: `Reads the mirror set FILE and copies each of its rules, in order, as skiff copy
does (what the targets have is skipped; a rerun sends only what changed). A set
with a mistake is refused whole, each mistake named with its line, before anything
is copied, and every rule's source is read first (an upstream down, or refusing
the credentials, fails the run and changes nothing). At the end a summary: images, manifests and blobs copied and skipped,
bytes, time, and each rule that failed, with why; the exit status is non-zero if
any failed.

The file:

  defaults:                      # for every rule that does not say
    platforms: [linux/amd64]
    referrers: true
    digestTags: true
  mirrors:
    - source: quay.io/org/app    # a repository: the tags matching
      target: registry.example.com/mirror/app
      tags: 'v1\.[0-9]+'
    - source: docker.io/library/alpine:3.20
      target: registry.example.com/mirror/alpine
      platforms: [linux/amd64, linux/arm64]`,
		Example: `  skiff mirror run mirror.yaml
  skiff mirror run --check mirror.yaml`,
		Args: wantArgs(1, "the mirror set FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMirrorSet(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], ma)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&ma.jobs, "jobs", 4, "blobs copied at once")
	fs.BoolVar(&ma.insecure, "insecure", false, "allow plain HTTP and unverified TLS, to every registry")
	fs.BoolVar(&ma.json, "json", false, "print JSON lines even on a terminal")
	fs.BoolVar(&ma.check, "check", false, "check the file and print its rules; copy nothing")
	return cmd
}

func runMirrorSet(ctx context.Context, stdout, stderr io.Writer, file string, ma mirrorRunArgs) error {
	if ma.jobs < 1 || ma.jobs > 64 {
		return fmt.Errorf("--jobs %d: want 1 to 64", ma.jobs)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	set, err := mirror.ParseSet(b)
	if err != nil {
		return fmt.Errorf("%s:\n  %s", file, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	if ma.check {
		for _, e := range set.Entries {
			fmt.Fprintf(stdout, "%s -> %s\n", e.Name(), e.Target)
		}
		return nil
	}
	rep := newReporter(stdout, stderr, ma.json)
	c, err := copier.New(copier.Options{Jobs: ma.jobs, Insecure: ma.insecure, UserAgent: userAgent(), Events: rep.event})
	if err != nil {
		return err
	}
	start := time.Now()
	// Every source is read before anything is copied: an upstream that is
	// down or refuses the credentials fails the run, naming its rules, and
	// changes nothing.
	copiers := make([]*copier.Copier, len(set.Entries))
	var unreadable []string
	for i, e := range set.Entries {
		sel, err := copier.RuleSelection(e.Rule)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err) // ParseSet checked it
		}
		copiers[i] = c.Select(sel)
		if err := copiers[i].Preflight(ctx, e.Source, e.Target); err != nil {
			unreadable = append(unreadable, e.Name()+": "+err.Error())
		}
	}
	if len(unreadable) > 0 {
		return fmt.Errorf("%s: nothing copied: %d of %d rules cannot read their source:\n  %s", file, len(unreadable), len(set.Entries), strings.Join(unreadable, "\n  "))
	}
	var sum copier.Summary
	var failed []string
	for i, e := range set.Entries {
		s, err := copiers[i].Copy(ctx, e.Source, e.Target)
		sum.Add(s)
		if err != nil {
			failed = append(failed, e.Name()+": "+strings.ReplaceAll(err.Error(), "\n", "\n    "))
			if len(s.Failures) == 0 {
				sum.Failures = append(sum.Failures, copier.Failure{Image: e.Source, Error: err.Error()})
			}
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			break
		}
	}
	sum.Duration = time.Since(start)
	sum.Seconds = sum.Duration.Seconds()
	rep.summary(sum)
	if len(failed) > 0 {
		return fmt.Errorf("%s: %d of %d rules failed:\n  %s", file, len(failed), len(set.Entries), strings.Join(failed, "\n  "))
	}
	return nil
}
