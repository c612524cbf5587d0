package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/server"
)

// gcArgs is a parsed `skiff gc` command line.
type gcArgs struct {
	data, table, bucket string
	registry            string
	dryRun, json        bool
	grace, window       time.Duration
}

func newGCCommand(getenv func(string) string) *cobra.Command {
	var ga gcArgs
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Collect garbage: delete blobs nothing names, older than the grace period",
		Long: `Runs one garbage collection pass and reports what it deleted (or, with --dry-run,
would delete) and the bytes. Pushes may go on meanwhile: the pass never deletes
a blob a manifest names, nor anything younger than --grace. Manifests and tags
are never deleted; a blob goes once no manifest of its repository names it.

The stores are (one of):
  --data=DIR                 the embedded store of skiff serve (stop the server
                             first: it holds the database; it collects on its own
                             every --gc-interval)
  --table=NAME --bucket=NAME the AWS deployment's DynamoDB table and S3 bucket, with
                             your AWS credentials (default $` + deploy.EnvTable + `, $` + deploy.EnvBucket + `)
  --registry=URL             a server's operator API (skiff serve --operator-api), which
                             runs the pass; with --auth on the server, SKIFF_USERNAME and
                             SKIFF_PASSWORD are an admin's`,
		Example: `  skiff gc --data ./data --dry-run
  skiff gc --table skiff-meta --bucket skiff-blobs --grace 48h --json
  skiff gc --registry http://127.0.0.1:5000`,
		Args: wantArgs(0, "no arguments, only flags"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ga.registry != "" {
				if ga.data != "" || ga.table != "" || ga.bucket != "" {
					return errors.New("give --registry, --data, or --table and --bucket: one of them")
				}
				return runRemoteGC(cmd, ga, getenv)
			}
			if ga.table == "" {
				ga.table = getenv(deploy.EnvTable)
			}
			if ga.bucket == "" {
				ga.bucket = getenv(deploy.EnvBucket)
			}
			return runGC(cmd, ga)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ga.data, "data", "", "data directory of the embedded store")
	fs.StringVar(&ga.table, "table", "", "DynamoDB table of the AWS deployment")
	fs.StringVar(&ga.bucket, "bucket", "", "S3 bucket of the AWS deployment")
	fs.StringVar(&ga.registry, "registry", "", "URL of a server with the operator API on")
	fs.BoolVar(&ga.dryRun, "dry-run", false, "report what would be deleted; delete nothing")
	fs.BoolVar(&ga.json, "json", false, "print the report as JSON")
	fs.DurationVar(&ga.grace, "grace", registry.DefaultGrace, "keep anything younger than this; longer than your longest push")
	fs.DurationVar(&ga.window, "link-window", registry.DefaultLinkWindow, "the registry's link window (as its servers and functions have it)")
	_ = fs.MarkHidden("link-window")
	return cmd
}

// config returns the stores' configuration the flags name.
func (ga gcArgs) config() (config.Config, error) {
	cfg := config.Default()
	cfg.Addr, cfg.GCGrace, cfg.LinkWindow = "", ga.grace, ga.window
	switch {
	case ga.data != "" && (ga.table != "" || ga.bucket != ""):
		return cfg, errors.New("give --data, or --table and --bucket, not both")
	case ga.data != "":
		if _, err := os.Stat(filepath.Join(ga.data, "meta.db")); err != nil {
			return cfg, fmt.Errorf("%s holds no skiff data (no meta.db): %w", ga.data, err)
		}
		cfg.DataDir = ga.data
	case ga.table != "" && ga.bucket != "":
		cfg.Backend, cfg.Table, cfg.Bucket = config.BackendAWS, ga.table, ga.bucket
	case ga.table != "" || ga.bucket != "":
		return cfg, errors.New("the AWS stores need both --table and --bucket")
	default:
		return cfg, errors.New("say where the data is: --data=DIR (the embedded store) or --table=NAME --bucket=NAME (the AWS deployment)")
	}
	return cfg, cfg.Validate()
}

func runGC(cmd *cobra.Command, ga gcArgs) error {
	cfg, err := ga.config()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	stores, err := backend.Open(ctx, cfg)
	if err != nil {
		if cfg.Backend == config.BackendLocal {
			return fmt.Errorf("%w (is skiff serve running on %s? it collects on its own every --gc-interval)", err, cfg.DataDir)
		}
		return err
	}
	defer stores.Close()
	log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := server.Collector(cfg, stores, log, ga.dryRun)
	if err != nil {
		return err
	}
	rep, err := c.Run(ctx)
	if ga.json {
		if perr := printJSON(cmd.OutOrStdout(), rep); perr != nil {
			return perr
		}
	} else {
		printReport(cmd.OutOrStdout(), rep)
	}
	if err != nil {
		return fmt.Errorf("garbage collection stopped (what it did is above; run it again to finish): %w", err)
	}
	return nil
}

// runRemoteGC has the server at --registry run the pass.
func runRemoteGC(cmd *cobra.Command, ga gcArgs, getenv func(string) string) error {
	base, err := registryURL(ga.registry)
	if err != nil {
		return err
	}
	cred, err := envCredentials(getenv)
	if err != nil {
		return err
	}
	grace := ga.grace
	if !cmd.Flags().Changed("grace") {
		grace = 0 // the server's
	}
	rep, err := newOperatorClient(base, cred).Collect(cmd.Context(), ga.dryRun, grace)
	if err != nil {
		return err
	}
	if ga.json {
		return printJSON(cmd.OutOrStdout(), rep)
	}
	printReport(cmd.OutOrStdout(), rep)
	return nil
}

func printReport(w io.Writer, rep gc.Report) {
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
	}
	if len(rep.Deleted) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tREPOSITORY\tDIGEST\tSIZE\tKEY")
		for _, d := range rep.Deleted {
			repo := d.Repo
			if repo == "" {
				repo = "-"
			}
			dg := string(d.Digest)
			if dg == "" {
				dg = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", d.Kind, repo, dg, d.Size, d.Key)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "%s %d links, %d blobs and %d orphaned copies: %d bytes (grace %s; %d repositories, %d manifests, %d links, %d records, %d objects looked at in %s)\n",
		verb, rep.LinksDeleted, rep.BlobsDeleted, rep.OrphansDeleted, rep.BytesReclaimed, rep.Grace,
		rep.Repositories, rep.Manifests, rep.Links, rep.Contents, rep.Objects, rep.Finished.Sub(rep.Started).Round(time.Millisecond))
	if rep.Truncated {
		fmt.Fprintf(w, "(the list above stops at %d entries; the counts are complete)\n", len(rep.Deleted))
	}
}
