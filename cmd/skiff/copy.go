package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/skiff-registry/skiff/internal/copier"
	"github.com/skiff-registry/skiff/internal/imageref"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// copyArgs is a parsed `skiff copy` command line.
type copyArgs struct {
	platforms  []string
	referrers  bool
	digestTags bool
	tags       string
	jobs       int
	insecure   bool
	json       bool
}

func newCopyCommand() *cobra.Command {
	var ca copyArgs
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an image, or chosen platforms of an index with its signatures, between registries",
		Long: `Copies the image SRC (host/repo:tag or host/repo@digest) to DST, a repository
(the tag or digest is kept) or a reference of its own, between any two registries.

With --platforms only those children of an index are copied, and the index itself
unchanged: its digest, and so its signatures, hold. The destination must take an
index with absent children (a skiff repository whose policy allows it, skiff policy
set PREFIX --index-children=none); a strict one refuses it before any blob is sent.

What the destination has is skipped, so a copy run again after an interruption
sends no finished blob twice, and a second run of a finished copy sends nothing.
Blobs go --jobs at a time. Credentials are those of docker and podman (docker
config, credential helpers, $REGISTRY_AUTH_FILE), as crane reads them.

On a terminal it shows progress bars; otherwise it prints one JSON line per event
(image, blob-start, blob-copied, blob-skipped, manifest-copied, manifest-skipped,
tag, warning, image-done, image-failed) and a summary line. It exits non-zero,
naming each image that failed and why.`,
		Example: `  skiff copy --platforms linux/amd64 --referrers --digest-tags \
      quay.io/org/app:v1 registry.example.com/mirror/app
  skiff copy --tags '^v1\.[0-9]+$' docker.io/library/alpine 127.0.0.1:5000/mirror/alpine --insecure`,
		Args: wantArgs(2, "SRC and DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := ca.options()
			if err != nil {
				return err
			}
			return runCopy(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), ca.json, opts, [][2]string{{args[0], args[1]}})
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&ca.platforms, "platforms", nil, "copy only these platforms of an index, os/arch[/variant] (comma-separated)")
	fs.BoolVar(&ca.referrers, "referrers", false, "copy the referrers of what is copied (signatures, SBOMs, attestations)")
	fs.BoolVar(&ca.digestTags, "digest-tags", false, "copy cosign's sha256-<hex>.sig/.att/.sbom tags of what is copied")
	fs.StringVar(&ca.tags, "tags", "", "SRC is a repository: copy every tag matching this regular expression (the whole tag)")
	fs.IntVar(&ca.jobs, "jobs", 4, "blobs copied at once")
	fs.BoolVar(&ca.insecure, "insecure", false, "allow plain HTTP and unverified TLS, to both registries")
	fs.BoolVar(&ca.json, "json", false, "print JSON lines even on a terminal")
	return cmd
}

// options checks the flags and turns them into the copier's options.
func (ca copyArgs) options() (copier.Options, error) {
	opts := copier.Options{Selection: copier.Selection{Referrers: ca.referrers, DigestTags: ca.digestTags}, Insecure: ca.insecure, Jobs: ca.jobs, UserAgent: userAgent()}
	if ca.jobs < 1 || ca.jobs > 64 {
		return opts, fmt.Errorf("--jobs %d: want 1 to 64", ca.jobs)
	}
	ps, err := parsePlatforms(ca.platforms)
	if err != nil {
		return opts, fmt.Errorf("--platforms: %w", err)
	}
	opts.Platforms = ps
	if ca.tags != "" {
		re, err := imageref.CompileTagPattern(ca.tags)
		if err != nil {
			return opts, fmt.Errorf("--tags: %w", err)
		}
		opts.Tags = re
	}
	return opts, nil
}

// parsePlatforms parses platforms named on a command line or in a mirror
// set; an os or architecture the image spec does not know is an error.
func parsePlatforms(ss []string) ([]ocispec.Platform, error) {
	var out []ocispec.Platform
	for _, s := range ss {
		p, err := oci.ParseKnownPlatform(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func userAgent() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "skiff/" + v
}

// runCopy copies each pair with one copier, reporting to stdout (JSON
// lines) or stderr (bars, on a terminal), and returns an error naming
// every image that failed.
func runCopy(ctx context.Context, stdout, stderr io.Writer, forceJSON bool, opts copier.Options, pairs [][2]string) error {
	rep := newReporter(stdout, stderr, forceJSON)
	opts.Events = rep.event
	c, err := copier.New(opts)
	if err != nil {
		return err
	}
	var sum copier.Summary
	var failed []string
	for _, p := range pairs {
		s, err := c.Copy(ctx, p[0], p[1])
		sum.Add(s)
		if err != nil {
			failed = append(failed, err.Error())
			if len(s.Failures) == 0 {
				// The copy failed before any image began (a bad reference,
				// a listing that failed): it counts as one failure.
				sum.Failures = append(sum.Failures, copier.Failure{Image: p[0], Error: err.Error()})
			}
		}
	}
	rep.summary(sum)
	if len(failed) > 0 {
		return fmt.Errorf("%d image(s) failed:\n  %s", len(sum.Failures), strings.Join(strings.Split(strings.Join(failed, "\n"), "\n"), "\n  "))
	}
	return nil
}
