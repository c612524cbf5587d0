package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

const policyUsage = `usage: skiff policy <command> [flags]

Per-repository index policy: which children of an image index, and which
blobs of an image, must be in the repository when it is pushed.

commands:
  set PREFIX --index-children=all|none|platforms [--platforms=linux/amd64,linux/arm64/v8]
             [--image-blobs=required|optional]
  get PREFIX
  list
  delete PREFIX
  history PREFIX

where the policies are (one of):
  --registry=URL   a server's operator API (skiff serve --operator-api); default $SKIFF_REGISTRY.
                   With --auth on the server, set SKIFF_USERNAME and SKIFF_PASSWORD to an admin's
  --table=NAME     the DynamoDB table itself, with your AWS credentials (IAM decides)

  --json           print JSON instead of text
`

// policyArgs is a parsed `skiff policy` command line.
type policyArgs struct {
	action   string
	prefix   string     // canonical; empty for list
	policy   oci.Policy // set: validated
	registry string
	table    string
	json     bool
}

// parsePolicyArgs parses and validates a `skiff policy` command line
// (args after "policy"), so bad input fails before any network call with
// the message the server would give.
func parsePolicyArgs(args []string, getenv func(string) string, stderr io.Writer) (policyArgs, error) {
	var pa policyArgs
	if len(args) == 0 {
		return pa, usagef("skiff policy needs a command: set, get, list, delete or history")
	}
	pa.action = args[0]
	switch pa.action {
	case "set", "get", "list", "delete", "history":
	case "help", "-h", "--help":
		return pa, flag.ErrHelp
	default:
		return pa, usagef("unknown policy command %q (want set, get, list, delete or history)", pa.action)
	}
	fs := flag.NewFlagSet("policy "+pa.action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&pa.registry, "registry", "", "URL of a server with the operator API on (default $SKIFF_REGISTRY)")
	fs.StringVar(&pa.table, "table", "", "DynamoDB table to change directly, with your AWS credentials")
	fs.BoolVar(&pa.json, "json", false, "print JSON")
	var children, platforms, blobs string
	if pa.action == "set" {
		fs.StringVar(&children, "index-children", "", "which index children must be present: all, none or platforms")
		fs.StringVar(&platforms, "platforms", "", "with --index-children=platforms: the required platforms, comma-separated os/arch[/variant][:os.version]")
		fs.StringVar(&blobs, "image-blobs", "", "whether an image's config and layers must be present: required (default) or optional")
	}
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return pa, err
	}
	switch {
	case pa.action == "list" && len(pos) != 0:
		return pa, usagef("skiff policy list takes no arguments, got %q", pos)
	case pa.action != "list" && len(pos) != 1:
		return pa, usagef("skiff policy %s takes one PREFIX (a repository or a namespace such as mirror/), got %d arguments", pa.action, len(pos))
	}
	if err := pa.target(getenv); err != nil {
		return pa, err
	}
	if pa.action == "list" {
		return pa, nil
	}
	if pa.action != "set" {
		pa.prefix, err = oci.NormalizePrefix(pos[0])
		return pa, err
	}
	if children == "" {
		return pa, usagef("skiff policy set needs --index-children=all|none|platforms")
	}
	p := oci.Policy{Prefix: pos[0], IndexChildren: oci.IndexChildren(children), ImageBlobs: oci.ImageBlobs(blobs)}
	if platforms != "" {
		for _, s := range strings.Split(platforms, ",") {
			p.Platforms = append(p.Platforms, strings.TrimSpace(s))
		}
	}
	pa.policy, err = p.Validate()
	pa.prefix = pa.policy.Prefix
	return pa, err
}

// target picks the one place the policies are.
func (pa *policyArgs) target(getenv func(string) string) error {
	switch {
	case pa.registry != "" && pa.table != "":
		return usagef("give --registry or --table, not both")
	case pa.table != "":
		return nil
	case pa.registry == "":
		pa.registry = getenv("SKIFF_REGISTRY")
	}
	if pa.registry == "" {
		return usagef("say where the policies are: --registry=URL (a server's operator API) or --table=NAME (the DynamoDB table, with your AWS credentials)")
	}
	u, err := registryURL(pa.registry)
	pa.registry = u
	return err
}

func policyCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	pa, err := parsePolicyArgs(args, getenv, stderr)
	if err != nil {
		return explainUsage(err, policyUsage, stdout, stderr)
	}
	var (
		store httpapi.PolicyStore
		who   string
		note  string
	)
	if pa.table != "" {
		if store, who, err = openTable(ctx, pa.table, getenv); err != nil {
			return err
		}
		note = fmt.Sprintf("servers apply it within %s (their policy cache)", policy.DefaultTTL)
	} else {
		cred, err := envCredentials(getenv)
		if err != nil {
			return explainUsage(err, policyUsage, stdout, stderr)
		}
		store, who = newOperatorClient(pa.registry, cred), localOperator(getenv)
		note = fmt.Sprintf("the server that answered applies it at once, other instances within %s (their policy cache)", policy.DefaultTTL)
	}
	v, err := pa.do(ctx, store, who)
	if errors.Is(err, policy.ErrNotFound) {
		// The store's own text; the server says the same in POLICY_UNKNOWN.
		return fmt.Errorf("no policy is set for prefix %s", pa.prefix)
	}
	if err != nil {
		return err
	}
	if pa.json {
		return printJSON(stdout, v)
	}
	switch v := v.(type) {
	case policy.Record:
		switch {
		case pa.action == "get":
		case v.Deleted:
			fmt.Fprintf(stdout, "deleted the policy of %s; its repositories now get a shorter prefix's policy or the default\n", pa.prefix)
		default:
			fmt.Fprintf(stdout, "set the policy of %s\n", pa.prefix)
		}
		printRecord(stdout, v)
		if pa.action != "get" {
			fmt.Fprintln(stdout, note)
		}
	case httpapi.PolicyList:
		printList(stdout, v.Policies)
	case httpapi.PolicyHistory:
		printHistory(stdout, pa.prefix, v.Changes)
	}
	return nil
}

// do runs the command against store and returns what --json prints: a
// Record, a PolicyList or a PolicyHistory, the operator API's shapes
// whichever path the command took.
func (pa policyArgs) do(ctx context.Context, store httpapi.PolicyStore, who string) (any, error) {
	switch pa.action {
	case "set":
		return store.Set(ctx, pa.policy, who)
	case "delete":
		return store.Delete(ctx, pa.prefix, who)
	case "get":
		return store.Get(ctx, pa.prefix)
	case "list":
		recs, err := store.List(ctx)
		if recs == nil {
			recs = []policy.Record{}
		}
		return httpapi.PolicyList{Policies: recs}, err
	case "history":
		changes, err := store.History(ctx, pa.prefix)
		if changes == nil {
			changes = []policy.Change{}
		}
		return httpapi.PolicyHistory{Changes: changes}, err
	}
	return nil, fmt.Errorf("unknown policy command %q", pa.action)
}

func printRecord(w io.Writer, rec policy.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := rec.Policy
	fmt.Fprintf(tw, "prefix:\t%s\n", p.Prefix)
	if rec.Deleted {
		fmt.Fprintf(tw, "deleted:\tyes\n")
	} else {
		fmt.Fprintf(tw, "index-children:\t%s\n", p.IndexChildren)
		if len(p.Platforms) > 0 {
			fmt.Fprintf(tw, "platforms:\t%s\n", strings.Join(p.Platforms, ","))
		}
		fmt.Fprintf(tw, "image-blobs:\t%s\n", p.ImageBlobs)
	}
	fmt.Fprintf(tw, "updated-by:\t%s\n", rec.UpdatedBy)
	fmt.Fprintf(tw, "updated-at:\t%s\n", rec.UpdatedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "previous:\t%s\n", describe(rec.Previous))
	tw.Flush()
}

// describe spells a policy the way the flags do; nil is the default.
func describe(p *oci.Policy) string {
	if p == nil {
		return "none (default: " + oci.DefaultPolicy().String() + ")"
	}
	return p.String()
}

func printList(w io.Writer, recs []policy.Record) {
	if len(recs) == 0 {
		fmt.Fprintf(w, "no policies: every repository gets the default (%s)\n", oci.DefaultPolicy())
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tINDEX-CHILDREN\tPLATFORMS\tIMAGE-BLOBS\tUPDATED-BY\tUPDATED-AT")
	for _, r := range recs {
		p := r.Policy
		platforms := strings.Join(p.Platforms, ",")
		if platforms == "" {
			platforms = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Prefix, p.IndexChildren, platforms, p.ImageBlobs, r.UpdatedBy, r.UpdatedAt.Format(time.RFC3339))
	}
	tw.Flush()
}

func printHistory(w io.Writer, prefix string, changes []policy.Change) {
	if len(changes) == 0 {
		fmt.Fprintf(w, "no changes recorded for prefix %s\n", prefix)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTION\tBY\tPOLICY\tPREVIOUS")
	for _, c := range changes {
		now := "-"
		if c.New != nil {
			now = c.New.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.At.Format(time.RFC3339), c.Action, c.By, now, describe(c.Previous))
	}
	tw.Flush()
}
