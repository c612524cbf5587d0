package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// indexArgs is a parsed `skiff index` command line.
type indexArgs struct {
	repo     string
	ref      oci.Reference
	registry string
	json     bool
}

// newIndexCommand builds `skiff index`; status hands its parsed and
// validated arguments to do.
func newIndexCommand(getenv func(string) string, do func(*cobra.Command, indexArgs) error) *cobra.Command {
	var ia indexArgs
	status := &cobra.Command{
		Use:   "status REPO:TAG|REPO@DIGEST",
		Short: "Show which platforms of an image index the repository holds",
		Long: `Shows which platform manifests an image index names are present in the
repository and which are absent (a partial mirror). The server is --registry (a
server's operator API, skiff serve --operator-api; default $SKIFF_REGISTRY); with
--auth on the server, set SKIFF_USERNAME and SKIFF_PASSWORD to an admin's.`,
		Example: `  skiff index status mirror/app:v1 --registry=http://127.0.0.1:5000`,
		Args:    wantArgs(1, "one REPO@DIGEST or REPO:TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if ia.repo, ia.ref, err = parseImageRef(args[0]); err != nil {
				return err
			}
			if ia.registry == "" {
				ia.registry = getenv("SKIFF_REGISTRY")
			}
			if ia.registry == "" {
				return errors.New("say which server: --registry=URL (or $SKIFF_REGISTRY)")
			}
			if ia.registry, err = registryURL(ia.registry); err != nil {
				return err
			}
			return do(cmd, ia)
		},
	}
	status.Flags().StringVar(&ia.registry, "registry", "", "URL of a server with the operator API on (default $SKIFF_REGISTRY)")
	status.Flags().BoolVar(&ia.json, "json", false, "print JSON instead of text")
	group := &cobra.Command{
		Use:                "index",
		Short:              "Image indexes of a partial mirror: which platforms are there (status)",
		Args:               cobra.ArbitraryArgs,
		RunE:               needCommand,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
	}
	group.AddCommand(status)
	return group
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

// runIndex asks the server for the index report and prints it.
func runIndex(cmd *cobra.Command, ia indexArgs, getenv func(string) string) error {
	cred, err := envCredentials(getenv)
	if err != nil {
		return err
	}
	rep, err := newOperatorClient(ia.registry, cred).IndexStatus(cmd.Context(), ia.repo, ia.ref)
	if err != nil {
		return err
	}
	if ia.json {
		return printJSON(cmd.OutOrStdout(), rep)
	}
	printIndexReport(cmd.OutOrStdout(), rep)
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
