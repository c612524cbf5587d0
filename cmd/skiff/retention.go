package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// retentionArgs is a parsed `skiff retention` command line.
type retentionArgs struct {
	action string
	prefix string        // canonical; empty for list
	rule   oci.Retention // set: validated
	where  policyArgs    // registry or table
	json   bool
}

// newRetentionCommand builds `skiff retention`, shaped like `skiff
// policy`; bad input fails before any network call.
func newRetentionCommand(getenv func(string) string, do func(*cobra.Command, retentionArgs) error) *cobra.Command {
	var (
		ra       retentionArgs
		untagged string
		keep     []string
	)
	group := &cobra.Command{
		Use:   "retention",
		Short: "Per-repository retention policy: set, get, list, delete, history",
		Long: `Per-repository retention policy: which tags and manifests garbage collection
deletes. A repository no retention policy covers keeps every tag and every
untagged manifest. What a rule never deletes: what a kept tag or a kept index
names, the referrers and cosign digest tags of a kept manifest, anything
pushed or used within the collector's grace period.

The policies are (one of):
  --registry=URL   behind a server's operator API (skiff serve --operator-api); default
                   $SKIFF_REGISTRY. With --auth on the server, set SKIFF_USERNAME and
                   SKIFF_PASSWORD to an admin's
  --table=NAME     in the DynamoDB table itself, with your AWS credentials (IAM decides)`,
		Example: `  skiff retention set ci/ --keep-tags 'pr-.*=5' --untagged-after 7d --registry=http://127.0.0.1:5000
  skiff retention set mirror/ --untagged-after 30d --table=skiff-meta
  skiff retention history ci/`,
		Args:               cobra.ArbitraryArgs,
		RunE:               needCommand,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
	}
	prefix := "one PREFIX (a repository or a namespace such as mirror/)"
	addRuleCommands(group, []ruleCommand{
		{"set PREFIX [--untagged-after=DURATION] [--keep-tags=PATTERN=N]...", "Set the retention policy of the repositories under PREFIX", 1, prefix},
		{"get PREFIX", "Print the retention policy set for PREFIX", 1, prefix},
		{"list", "List every retention policy", 0, "no arguments"},
		{"delete PREFIX", "Delete the retention policy of PREFIX: its repositories get a shorter prefix's, or keep everything", 1, prefix},
		{"history PREFIX", "Print the changes of PREFIX's retention policy, oldest first", 1, prefix},
	}, &ra.where.registry, &ra.where.table, &ra.json, func(cmd *cobra.Command) {
		if cmd.Name() == "set" {
			fs := cmd.Flags()
			fs.StringVar(&untagged, "untagged-after", "", "delete untagged manifests not pushed or used for this long (30d, 12h)")
			fs.StringArrayVar(&keep, "keep-tags", nil, "PATTERN=N: of the tags the regular expression PATTERN matches (whole), keep the N most recently pushed and delete the others; repeatable")
		}
	}, func(cmd *cobra.Command, args []string) error {
		ra.action = cmd.Name()
		if err := ra.check(args, untagged, keep, getenv); err != nil {
			return err
		}
		return do(cmd, ra)
	})
	return group
}

// check validates the command line.
func (ra *retentionArgs) check(pos []string, untagged string, keep []string, getenv func(string) string) error {
	if err := ra.where.target(getenv); err != nil {
		return err
	}
	var err error
	switch ra.action {
	case "list":
		return nil
	case "set":
	default:
		ra.prefix, err = oci.NormalizePrefix(pos[0])
		return err
	}
	r := oci.Retention{Prefix: pos[0]}
	if untagged != "" {
		if r.UntaggedAfter, err = oci.ParseDuration(untagged); err != nil {
			return fmt.Errorf("--untagged-after: %w", err)
		}
		if r.UntaggedAfter == 0 {
			return errors.New("--untagged-after must be longer than 0; leave it out to keep untagged manifests")
		}
	}
	for _, k := range keep {
		i := strings.LastIndex(k, "=")
		n, err := strconv.Atoi(k[i+1:])
		if i <= 0 || err != nil {
			return fmt.Errorf("--keep-tags %q is not PATTERN=N, such as 'v.*=10'", k)
		}
		r.KeepTags = append(r.KeepTags, oci.TagKeep{Pattern: k[:i], Last: n})
	}
	ra.rule, err = r.Validate()
	ra.prefix = ra.rule.Prefix
	return err
}

// runRetention runs a retention command against the store ra names and
// prints the result.
func runRetention(cmd *cobra.Command, ra retentionArgs, getenv func(string) string) error {
	ctx, stdout := cmd.Context(), cmd.OutOrStdout()
	meta, client, who, err := ruleTarget(ctx, ra.where, getenv)
	if err != nil {
		return err
	}
	var store httpapi.RetentionStore = retentionClient(client)
	if meta != nil {
		store = policy.NewRetentionStore(meta)
	}
	v, err := ra.do(ctx, store, who)
	if errors.Is(err, policy.ErrNotFound) {
		return fmt.Errorf("no retention policy is set for prefix %s", ra.prefix)
	}
	if err != nil {
		return err
	}
	if ra.json {
		return printJSON(stdout, v)
	}
	switch v := v.(type) {
	case policy.RetentionRecord:
		switch {
		case ra.action == "get":
		case v.Deleted:
			fmt.Fprintf(stdout, "deleted the retention policy of %s; its repositories now get a shorter prefix's, or keep everything\n", ra.prefix)
		default:
			fmt.Fprintf(stdout, "set the retention policy of %s; the next garbage collection applies it\n", ra.prefix)
		}
		printRetention(stdout, v)
	case httpapi.RetentionList:
		if len(v.Policies) == 0 {
			fmt.Fprintln(stdout, "no retention policies: every repository keeps its tags and untagged manifests")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PREFIX\tRULES\tUPDATED-BY\tUPDATED-AT")
		for _, r := range v.Policies {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Policy.Prefix, r.Policy, r.UpdatedBy, r.UpdatedAt.Format(time.RFC3339))
		}
		tw.Flush()
	case httpapi.RetentionHistory:
		if len(v.Changes) == 0 {
			fmt.Fprintf(stdout, "no changes recorded for prefix %s\n", ra.prefix)
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tACTION\tBY\tRULES\tPREVIOUS")
		for _, c := range v.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.At.Format(time.RFC3339), c.Action, c.By, describeRetention(c.New), describeRetention(c.Previous))
		}
		tw.Flush()
	}
	return nil
}

// do runs the command against store and returns what --json prints, the
// operator API's shapes whichever path the command took.
func (ra retentionArgs) do(ctx context.Context, store httpapi.RetentionStore, who string) (any, error) {
	return ruleDo(ctx, store, ra.action, ra.prefix, ra.rule, who)
}

func printRetention(w io.Writer, rec policy.RetentionRecord) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	r := rec.Policy
	fmt.Fprintf(tw, "prefix:\t%s\n", r.Prefix)
	if rec.Deleted {
		fmt.Fprintf(tw, "deleted:\tyes\n")
	} else {
		if r.UntaggedAfter > 0 {
			fmt.Fprintf(tw, "untagged-after:\t%s\n", r.UntaggedAfter)
		}
		for _, k := range r.KeepTags {
			fmt.Fprintf(tw, "keep-tags:\tthe last %d matching %s\n", k.Last, k.Pattern)
		}
	}
	fmt.Fprintf(tw, "updated-by:\t%s\n", rec.UpdatedBy)
	fmt.Fprintf(tw, "updated-at:\t%s\n", rec.UpdatedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "previous:\t%s\n", describeRetention(rec.Previous))
	tw.Flush()
}

func describeRetention(r *oci.Retention) string {
	if r == nil {
		return "none (keep everything)"
	}
	return r.String()
}
