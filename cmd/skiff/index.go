package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/pkg/oci"
)

const indexUsage = `usage: skiff index status REPO@DIGEST|REPO:TAG [--registry=URL] [--json]

Shows which platform manifests an image index names are present in the
repository and which are absent (a partial mirror).

  --registry=URL   a server's operator API (skiff serve --operator-api); default $SKIFF_REGISTRY.
                   With --auth on the server, set SKIFF_USERNAME and SKIFF_PASSWORD to an admin's
  --json           print JSON instead of text
`

// indexArgs is a parsed `skiff index` command line.
type indexArgs struct {
	repo     string
	ref      oci.Reference
	registry string
	json     bool
}

func parseIndexArgs(args []string, getenv func(string) string, stderr io.Writer) (indexArgs, error) {
	var ia indexArgs
	if len(args) == 0 {
		return ia, usagef("skiff index needs a command: status")
	}
	switch args[0] {
	case "status":
	case "help", "-h", "--help":
		return ia, flag.ErrHelp
	default:
		return ia, usagef("unknown index command %q (want status)", args[0])
	}
	fs := flag.NewFlagSet("index status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&ia.registry, "registry", "", "URL of a server with the operator API on (default $SKIFF_REGISTRY)")
	fs.BoolVar(&ia.json, "json", false, "print JSON")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return ia, err
	}
	if len(pos) != 1 {
		return ia, usagef("skiff index status takes one REPO@DIGEST or REPO:TAG, got %d arguments", len(pos))
	}
	if ia.repo, ia.ref, err = parseImageRef(pos[0]); err != nil {
		return ia, err
	}
	if ia.registry == "" {
		ia.registry = getenv("SKIFF_REGISTRY")
	}
	if ia.registry == "" {
		return ia, usagef("say which server: --registry=URL (or $SKIFF_REGISTRY)")
	}
	ia.registry, err = registryURL(ia.registry)
	return ia, err
}

// parseImageRef splits REPO@DIGEST or REPO:TAG; the repository is named
// without the registry host, which --registry gives.
func parseImageRef(s string) (string, oci.Reference, error) {
	var repo, ref string
	if i := strings.Index(s, "@"); i >= 0 {
		repo, ref = s[:i], s[i+1:]
	} else if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		repo, ref = s[:i], s[i+1:]
	} else {
		return "", oci.Reference{}, fmt.Errorf("%q names no tag or digest; give REPO:TAG or REPO@DIGEST, e.g. mirror/app:1.0", s)
	}
	if first, _, ok := strings.Cut(repo, "/"); ok && strings.ContainsAny(first, ".:") {
		return "", oci.Reference{}, fmt.Errorf("%q starts with a registry host (%s); give the repository alone and the server as --registry", s, first)
	}
	if err := oci.ValidateRepository(repo); err != nil {
		return "", oci.Reference{}, err
	}
	r, err := oci.ParseReference(ref)
	if err != nil {
		return "", oci.Reference{}, err
	}
	return repo, r, nil
}

func indexCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ia, err := parseIndexArgs(args, getenv, stderr)
	if err != nil {
		return explainUsage(err, indexUsage, stdout, stderr)
	}
	cred, err := envCredentials(getenv)
	if err != nil {
		return explainUsage(err, indexUsage, stdout, stderr)
	}
	rep, err := newOperatorClient(ia.registry, cred).IndexStatus(ctx, ia.repo, ia.ref)
	if err != nil {
		return err
	}
	if ia.json {
		return printJSON(stdout, rep)
	}
	printIndexReport(stdout, rep)
	return nil
}

func printIndexReport(w io.Writer, rep httpapi.IndexReport) {
	fmt.Fprintf(w, "%s@%s (%s)\n", rep.Repository, rep.Digest, rep.MediaType)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLATFORM\tDIGEST\tSTATUS")
	var absent []string
	for _, c := range rep.Children {
		platform := c.Platform
		if platform == "" {
			platform = "(none)"
		}
		status := "present"
		if !c.Present {
			status = "absent"
			absent = append(absent, platform)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", platform, c.Digest, status)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d children present", rep.Present, rep.Present+rep.Absent)
	if len(absent) > 0 {
		fmt.Fprintf(w, "; absent: %s (a partial mirror: pulls of those platforms fail with MANIFEST_UNKNOWN)", strings.Join(absent, ", "))
	}
	fmt.Fprintln(w)
}
