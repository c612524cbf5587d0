package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// policyArgs is a parsed `skiff policy` command line.
type policyArgs struct {
	action   string
	prefix   string     // canonical; empty for list
	policy   oci.Policy // set: validated
	registry string
	table    string
	json     bool
}

// newPolicyCommand builds `skiff policy`; each command hands its parsed
// and validated arguments to do. Bad input fails before any network call,
// with the message the server would give.
func newPolicyCommand(getenv func(string) string, do func(*cobra.Command, policyArgs) error) *cobra.Command {
	var (
		pa                         policyArgs
		children, platforms, blobs string
	)
	group := &cobra.Command{
		Use:   "policy",
		Short: "Per-repository index policy: set, get, list, delete, history",
		Long: `Per-repository index policy: which children of an image index, and which
blobs of an image, must be in the repository when it is pushed.

The policies are (one of):
  --registry=URL   behind a server's operator API (skiff serve --operator-api); default
                   $SKIFF_REGISTRY. With --auth on the server, set SKIFF_USERNAME and
                   SKIFF_PASSWORD to an admin's
  --table=NAME     in the DynamoDB table itself, with your AWS credentials (IAM decides)`,
		Example: `  skiff policy set mirror/ --index-children=platforms --platforms=linux/amd64 --registry=http://127.0.0.1:5000
  skiff policy history mirror/ --table=skiff-meta`,
		Args:               cobra.ArbitraryArgs,
		RunE:               needCommand,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
	}
	prefix := "one PREFIX (a repository or a namespace such as mirror/)"
	addRuleCommands(group, []ruleCommand{
		{"set PREFIX --index-children=all|none|platforms", "Set the policy of the repositories under PREFIX", 1, prefix},
		{"get PREFIX", "Print the policy set for PREFIX", 1, prefix},
		{"list", "List every policy", 0, "no arguments"},
		{"delete PREFIX", "Delete the policy of PREFIX: its repositories get a shorter prefix's or the default", 1, prefix},
		{"history PREFIX", "Print the changes of PREFIX's policy, oldest first", 1, prefix},
	}, &pa.registry, &pa.table, &pa.json, func(cmd *cobra.Command) {
		if cmd.Name() == "set" {
			fs := cmd.Flags()
			fs.StringVar(&children, "index-children", "", "which index children must be present: all, none or platforms")
			fs.StringVar(&platforms, "platforms", "", "with --index-children=platforms: the required platforms, comma-separated os/arch[/variant][:os.version]")
			fs.StringVar(&blobs, "image-blobs", "", "whether an image's config and layers must be present: required (default) or optional")
		}
	}, func(cmd *cobra.Command, args []string) error {
		pa.action = cmd.Name()
		if err := pa.check(args, children, platforms, blobs, getenv); err != nil {
			return err
		}
		return do(cmd, pa)
	})
	return group
}

// ruleCommand is one command of a group of rules (policy, retention,
// mirror rule): its use line, what it does, and its arguments.
type ruleCommand struct {
	use, short string
	n          int
	what       string
}

// addRuleCommands adds cmds to group, each with the flags of where the
// rules are (--registry, --table) and --json, and those flags adds; each
// runs run.
func addRuleCommands(group *cobra.Command, cmds []ruleCommand, registry, table *string, json *bool, flags func(*cobra.Command), run func(*cobra.Command, []string) error) {
	for _, c := range cmds {
		cmd := &cobra.Command{Use: c.use, Short: c.short, Args: wantArgs(c.n, c.what), RunE: run}
		fs := cmd.Flags()
		fs.StringVar(registry, "registry", "", "URL of a server with the operator API on (default $SKIFF_REGISTRY)")
		fs.StringVar(table, "table", "", "DynamoDB table to change directly, with your AWS credentials")
		fs.BoolVar(json, "json", false, "print JSON instead of text")
		flags(cmd)
		group.AddCommand(cmd)
	}
}

// check validates the command line: pos are the positional arguments,
// children, platforms and blobs the flags of set.
func (pa *policyArgs) check(pos []string, children, platforms, blobs string, getenv func(string) string) error {
	if err := pa.target(getenv); err != nil {
		return err
	}
	var err error
	switch pa.action {
	case "list":
		return nil
	case "set":
	default:
		pa.prefix, err = oci.NormalizePrefix(pos[0])
		return err
	}
	if children == "" {
		return errors.New("skiff policy set needs --index-children=all|none|platforms")
	}
	p := oci.Policy{Prefix: pos[0], IndexChildren: oci.IndexChildren(children), ImageBlobs: oci.ImageBlobs(blobs)}
	if platforms != "" {
		for _, s := range strings.Split(platforms, ",") {
			p.Platforms = append(p.Platforms, strings.TrimSpace(s))
		}
	}
	pa.policy, err = p.Validate()
	pa.prefix = pa.policy.Prefix
	return err
}

// target picks the one place the policies are.
func (pa *policyArgs) target(getenv func(string) string) error {
	switch {
	case pa.registry != "" && pa.table != "":
		return errors.New("give --registry or --table, not both")
	case pa.table != "":
		return nil
	case pa.registry == "":
		pa.registry = getenv("SKIFF_REGISTRY")
	}
	if pa.registry == "" {
		return errors.New("say where the policies are: --registry=URL (a server's operator API) or --table=NAME (the DynamoDB table, with your AWS credentials)")
	}
	u, err := registryURL(pa.registry)
	pa.registry = u
	return err
}

// runPolicy runs a policy command against the store pa names and prints
// the result.
func runPolicy(cmd *cobra.Command, pa policyArgs, getenv func(string) string) error {
	ctx, stdout := cmd.Context(), cmd.OutOrStdout()
	var (
		store httpapi.PolicyStore
		who   string
		note  string
		err   error
	)
	if pa.table != "" {
		if store, who, err = openTable(ctx, pa.table, getenv); err != nil {
			return err
		}
		note = fmt.Sprintf("servers apply it within %s (their policy cache)", policy.DefaultTTL)
	} else {
		cred, err := envCredentials(getenv)
		if err != nil {
			return err
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
	return ruleDo(ctx, store, pa.action, pa.prefix, pa.policy, who)
}

// ruleDo runs a rule command (policy, retention) against store.
func ruleDo[P any](ctx context.Context, store httpapi.RuleStore[P], action, prefix string, rule P, who string) (any, error) {
	switch action {
	case "set":
		return store.Set(ctx, rule, who)
	case "delete":
		return store.Delete(ctx, prefix, who)
	case "get":
		return store.Get(ctx, prefix)
	case "list":
		recs, err := store.List(ctx)
		if recs == nil {
			recs = []policy.RecordOf[P]{}
		}
		return httpapi.RuleList[P]{Policies: recs}, err
	case "history":
		changes, err := store.History(ctx, prefix)
		if changes == nil {
			changes = []policy.ChangeOf[P]{}
		}
		return httpapi.RuleHistory[P]{Changes: changes}, err
	}
	return nil, fmt.Errorf("unknown command %q", action)
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
