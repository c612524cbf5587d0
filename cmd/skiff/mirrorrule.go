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
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// mirrorRuleArgs is a parsed `skiff mirror rule` command line.
type mirrorRuleArgs struct {
	action string
	name   string      // canonical; empty for list
	rule   mirror.Rule // add: validated
	where  policyArgs  // registry or table
	json   bool
}

// newMirrorRuleCommand builds `skiff mirror rule`: the rules the scheduled
// sync runs, kept in the registry and audited like policies; bad input
// fails before any network call.
func newMirrorRuleCommand(getenv func(string) string, do func(*cobra.Command, mirrorRuleArgs) error) *cobra.Command {
	var ma mirrorRuleArgs
	group := &cobra.Command{
		Use:   "rule",
		Short: "The sync's mirror rules, kept in the registry: add, get, list, delete, history",
		Long: `The mirror rules the registry's scheduled sync runs (pull mode: the sync reads
the upstream and writes into the registry's storage, with no client and no request
size limit). A rule is a mirror set's entry with a name, and optionally the Secrets
Manager secret holding the upstream's {"username": ..., "password": ...}. Every change
is recorded with who made it; list shows each rule's last run.

The rules are (one of):
  --registry=URL   behind a server's operator API; default $SKIFF_REGISTRY. With
                   --auth on the server, SKIFF_USERNAME and SKIFF_PASSWORD are an admin's
  --table=NAME     in the DynamoDB table itself, with your AWS credentials (IAM decides)`,
		Example: `  skiff mirror rule add alpine --source docker.io/library/alpine --tags '3\.2[0-9]' \
      --target mirror/alpine --platforms linux/amd64 --referrers --credentials skiff/mirror/dockerhub
  skiff mirror rule list --registry https://registry.example.com`,
		Args:               cobra.ArbitraryArgs,
		RunE:               needCommand,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
	}
	name := "one NAME (lower-case letters, digits, - . _ /)"
	addRuleCommands(group, []ruleCommand{
		{"add NAME --source=SRC --target=DST [--tags=REGEX] [--platforms=...] [--referrers] [--digest-tags] [--credentials=SECRET]", "Add (or replace) the mirror rule NAME", 1, name},
		{"get NAME", "Print the mirror rule NAME", 1, name},
		{"list", "List every mirror rule with its last run", 0, "no arguments"},
		{"delete NAME", "Delete the mirror rule NAME: the sync runs it no more (what it copied stays)", 1, name},
		{"history NAME", "Print the changes of the mirror rule NAME, oldest first", 1, name},
	}, &ma.where.registry, &ma.where.table, &ma.json, func(cmd *cobra.Command) {
		if cmd.Name() == "add" {
			fs := cmd.Flags()
			fs.StringVar(&ma.rule.Source, "source", "", "the upstream image (host/repo:tag or @digest), or with --tags its repository")
			fs.StringVar(&ma.rule.Target, "target", "", "the repository of this registry to copy into, without its host (mirror/alpine)")
			fs.StringVar(&ma.rule.Tags, "tags", "", "copy every tag of the source repository matching this regular expression (whole)")
			fs.StringSliceVar(&ma.rule.Platforms, "platforms", nil, "copy only these platforms of an index, os/arch[/variant]")
			fs.BoolVar(&ma.rule.Referrers, "referrers", false, "copy the referrers (signatures, SBOMs, attestations)")
			fs.BoolVar(&ma.rule.DigestTags, "digest-tags", false, "copy cosign's sha256-<hex>.sig/.att/.sbom tags")
			fs.StringVar(&ma.rule.Credentials, "credentials", "", "the Secrets Manager secret (name or ARN, under skiff/mirror/) with the upstream's username and password")
		}
	}, func(cmd *cobra.Command, args []string) error {
		ma.action = cmd.Name()
		if err := ma.check(args, getenv); err != nil {
			return err
		}
		return do(cmd, ma)
	})
	return group
}

// check validates the command line.
func (ma *mirrorRuleArgs) check(pos []string, getenv func(string) string) error {
	if err := ma.where.target(getenv); err != nil {
		return err
	}
	if ma.action == "list" {
		return nil
	}
	if ma.action != "add" {
		n, err := oci.NormalizePrefix(pos[0])
		if err != nil {
			return fmt.Errorf("rule name %q: %w", pos[0], err)
		}
		ma.name = n
		return nil
	}
	ma.rule.Name = pos[0]
	r, err := ma.rule.Validate()
	if err != nil {
		return err
	}
	ma.rule, ma.name = r, r.Name
	return nil
}

// runMirrorRule runs a rule command against the store ma names and prints
// the result.
func runMirrorRule(cmd *cobra.Command, ma mirrorRuleArgs, getenv func(string) string) error {
	ctx, stdout := cmd.Context(), cmd.OutOrStdout()
	meta, client, who, err := ruleTarget(ctx, ma.where, getenv)
	if err != nil {
		return err
	}
	var (
		store httpapi.MirrorStore
		runs  func(context.Context) (map[string]mirror.Run, error)
	)
	if meta != nil {
		store = mirror.NewStore(meta)
		runs = func(ctx context.Context) (map[string]mirror.Run, error) { return mirror.Runs(ctx, meta) }
	} else {
		store, runs = mirrorClient(client), client.MirrorRuns
	}
	action := ma.action
	if action == "add" {
		action = "set"
	}
	v, err := ruleDo(ctx, store, action, ma.name, ma.rule, who)
	if errors.Is(err, policy.ErrNotFound) {
		return fmt.Errorf("no mirror rule is named %s", ma.name)
	}
	if err != nil {
		return err
	}
	var last map[string]mirror.Run
	if list, ok := v.(httpapi.MirrorList); ok {
		if last, err = runs(ctx); err != nil {
			return fmt.Errorf("the rules' last runs: %w", err)
		}
		if ma.json {
			return printJSON(stdout, struct {
				httpapi.MirrorList
				Runs map[string]mirror.Run `json:"runs"`
			}{list, last})
		}
	}
	if ma.json {
		return printJSON(stdout, v)
	}
	switch v := v.(type) {
	case policy.RecordOf[mirror.Rule]:
		switch {
		case ma.action == "get":
		case v.Deleted:
			fmt.Fprintf(stdout, "deleted the mirror rule %s; the sync runs it no more\n", ma.name)
		default:
			fmt.Fprintf(stdout, "added the mirror rule %s; the next scheduled sync runs it\n", ma.name)
		}
		printMirrorRule(stdout, v)
	case httpapi.MirrorList:
		printMirrorRules(stdout, v.Policies, last)
	case httpapi.MirrorHistory:
		if len(v.Changes) == 0 {
			fmt.Fprintf(stdout, "no changes recorded for mirror rule %s\n", ma.name)
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tACTION\tBY\tRULE\tPREVIOUS")
		for _, c := range v.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.At.Format(time.RFC3339), c.Action, c.By, describeMirrorRule(c.New), describeMirrorRule(c.Previous))
		}
		tw.Flush()
	}
	return nil
}

func describeMirrorRule(r *mirror.Rule) string {
	if r == nil {
		return "none"
	}
	s := r.Source + " -> " + r.Target
	if r.Tags != "" {
		s += " tags=" + r.Tags
	}
	if len(r.Platforms) > 0 {
		s += " platforms=" + strings.Join(r.Platforms, ",")
	}
	if r.Referrers {
		s += " referrers"
	}
	if r.DigestTags {
		s += " digest-tags"
	}
	if r.Credentials != "" {
		s += " credentials=" + r.Credentials
	}
	return s
}

func printMirrorRule(w io.Writer, rec policy.RecordOf[mirror.Rule]) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", rec.Policy.Name)
	if rec.Deleted {
		fmt.Fprintf(tw, "deleted:\tyes\n")
	} else {
		fmt.Fprintf(tw, "rule:\t%s\n", describeMirrorRule(&rec.Policy))
	}
	fmt.Fprintf(tw, "updated-by:\t%s\n", rec.UpdatedBy)
	fmt.Fprintf(tw, "updated-at:\t%s\n", rec.UpdatedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "previous:\t%s\n", describeMirrorRule(rec.Previous))
	tw.Flush()
}

// printMirrorRules lists the rules, each with its last run.
func printMirrorRules(w io.Writer, recs []policy.RecordOf[mirror.Rule], last map[string]mirror.Run) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "no mirror rules: the scheduled sync has nothing to do")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRULE\tLAST RUN\tIMAGES\tCOPIED\tERRORS")
	for _, r := range recs {
		run, ok := last[r.Policy.Name]
		when, images, copied, errs := "never", "-", "-", "-"
		if ok {
			when = run.Started.Format(time.RFC3339)
			if run.Finished.IsZero() {
				when += " (running)"
			}
			images = fmt.Sprint(run.Images)
			copied = fmt.Sprintf("%d blobs, %s", run.BlobsCopied, humanBytes(run.Bytes))
			errs = fmt.Sprint(len(run.Errors))
			if len(run.Errors) > 0 {
				errs += ": " + run.Errors[0]
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Policy.Name, describeMirrorRule(&r.Policy), when, images, copied, errs)
	}
	tw.Flush()
}
