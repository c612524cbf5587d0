package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/origin"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/server"
)

func newServeCommand(getenv func(string) string) *cobra.Command {
	cfg := config.Default()
	cfg.Bucket, cfg.Table = getenv(deploy.EnvBucket), getenv(deploy.EnvTable)
	var ingest bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry (embedded storage by default)",
		Long: `Runs the registry: the OCI distribution API on --addr, its data in --data (files and
bbolt) or, with --backend aws, in S3 and DynamoDB (SKIFF_S3_BUCKET, SKIFF_DYNAMODB_TABLE).
--operator-api serves the operator API (policies, index status, users) under /v2/_skiff/.`,
		Example: `  skiff serve --addr 127.0.0.1:5000 --data ./data
  skiff serve --auth --operator-api --data ./data`,
		Args: wantArgs(0, "no arguments, only flags"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), cmd.Flags(), cfg, ingest, getenv, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	fs.StringVar((*string)(&cfg.Backend), "backend", string(cfg.Backend), "storage backend: local (files + bbolt in --data) or aws (S3 + DynamoDB)")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory of the local backend")
	fs.BoolVar(&cfg.CreateResources, "create-resources", false, "aws backend: create the bucket and table when missing")
	fs.Int64Var(&cfg.MaxBody, "max-body", cfg.MaxBody, "maximum request body in bytes (0: no limit)")
	fs.DurationVar(&cfg.BodyTimeout, "body-timeout", cfg.BodyTimeout, "cut a request whose body sends less than 1 KiB in this time (0: no limit); fast uploads are never cut")
	fs.Int64Var(&cfg.RedirectMin, "redirect-min", cfg.RedirectMin, "aws backend: blobs of at least this many bytes are fetched by a 307 to a presigned S3 URL (-1: never)")
	fs.BoolVar(&cfg.Auth, "auth", false, "require authentication (token flow; users in the metadata store, see skiff user)")
	fs.BoolVar(&cfg.InsecureNoAuth, "insecure-no-auth", false, "allow serving without --auth on a non-loopback address")
	fs.Func("anonymous-pull", "comma-separated repository `prefixes` anyone may pull (with --auth; default none)", func(v string) error {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.AnonymousPull = append(cfg.AnonymousPull, p)
			}
		}
		return nil
	})
	fs.StringVar(&cfg.TokenKeyFile, "token-key-file", "", "token signing key file (default: <data>/token.key, created when missing)")
	fs.StringVar(&cfg.TokenKeySecret, "token-key-secret", getenv(deploy.EnvTokenKeySecret), "Secrets Manager secret holding the token signing key (aws backend; default $"+deploy.EnvTokenKeySecret+")")
	fs.StringVar(&cfg.Realm, "realm", "", "public URL of the token endpoint in challenges (default: derived from each request)")
	fs.BoolVar(&cfg.TrustForwarded, "trust-forwarded", false, "believe X-Forwarded-For/Proto/Host (behind a proxy that sets them)")
	fs.StringVar(&cfg.ClientIPHeader, "client-ip-header", "", "with --trust-forwarded: the header your proxy sets to the client's address, replacing a client's (e.g. X-Real-IP); default: the last X-Forwarded-For entry")
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `level`: debug, info, warn, error")
	fs.BoolVar(&cfg.OperatorAPI, "operator-api", false, "serve the operator API (index policies, index status, users) under /v2/_skiff/; with --auth it needs an admin, without it anyone who reaches it may use it")
	fs.DurationVar(&cfg.GCGrace, "gc-grace", registry.DefaultGrace, "garbage collection: keep anything younger than this (a blob not yet named by a manifest, a copy being written); longer than your longest push")
	fs.DurationVar(&cfg.GCInterval, "gc-interval", 24*time.Hour, "collect garbage this often (0: never; skiff gc runs a pass on demand)")
	fs.DurationVar(&cfg.LinkWindow, "link-window", registry.DefaultLinkWindow, "longest a push may take between reading a blob's record and linking it (tests shorten it)")
	_ = fs.MarkHidden("link-window")
	fs.BoolVar(&ingest, "ingest", false, "serve as the AWS deployment's ingest service: the blob routes only, no body cap, configured from the "+
		"SKIFF_* environment as the Lambda functions are, the front door's origin secret required, "+deploy.HealthPath+" for the load balancer "+
		"(only --addr, --body-timeout and --log-level apply)")
	return cmd
}

// serve runs the server with cfg, the configuration the flags fs set (or,
// with ingest, the environment's), until ctx ends.
func serve(ctx context.Context, fs *pflag.FlagSet, cfg config.Config, ingest bool, getenv func(string) string, stderr io.Writer) error {
	groups := httpapi.GroupAll
	if ingest {
		var err error
		if cfg, err = ingestConfig(fs, cfg, getenv); err != nil {
			return err
		}
		groups = httpapi.GroupBlob
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	var secret *origin.Secret
	if ingest {
		var err error
		if secret, err = origin.FromConfig(ctx, cfg); err != nil {
			return fmt.Errorf("origin secret: %w", err)
		}
	}

	stores, err := backend.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer stores.Close()
	srv0, err := server.New(ctx, cfg, stores, groups, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: a shutdown, not a failure
		}
		return err
	}
	api := srv0.Handler
	if ingest {
		api = origin.Require(api, secret, log)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 30 * time.Second}
	log.Info("serving", "addr", ln.Addr().String(), "backend", string(cfg.Backend), "data", cfg.DataDir, "bucket", cfg.Bucket, "table", cfg.Table,
		"operator_api", cfg.OperatorAPI, "auth", cfg.Auth, "policy_cache_ttl", srv0.PolicyCache.TTL().String(), "ingest", ingest)
	if cfg.OperatorAPI && !cfg.Auth {
		log.Warn("the operator API (/v2/_skiff/) is on without --auth: anyone who reaches this address can change index policies; serve it on a trusted network only, or add --auth",
			"addr", ln.Addr().String())
	}
	janitorCtx, stopJanitor := context.WithCancel(ctx)
	janitorDone := make(chan struct{})
	go func() {
		defer close(janitorDone)
		backend.RunJanitor(janitorCtx, stores, backend.JanitorInterval, log)
	}()
	if cfg.GCInterval > 0 && !ingest {
		collector, err := server.Collector(cfg, stores, log, false)
		if err != nil {
			stopJanitor()
			<-janitorDone
			return err
		}
		gcDone := make(chan struct{})
		go func() {
			defer close(gcDone)
			collector.Every(janitorCtx, cfg.GCInterval)
		}()
		defer func() { <-gcDone }() // runs after stopJanitor below
	}
	// Stopped before the stores close (deferred above, so run after this).
	defer func() { stopJanitor(); <-janitorDone }()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ingestConfig is the configuration of `skiff serve --ingest`: the blob
// function's (config.FromEnv over the same variables, so one environment
// configures both), without its body cap, listening on --addr (default
// all interfaces on deploy.IngestPort: it runs in a container). It must
// have an origin secret: only the front door may reach it.
func ingestConfig(fs *pflag.FlagSet, flags config.Config, getenv func(string) string) (config.Config, error) {
	var other []string
	addrSet := false
	fs.Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "ingest", "body-timeout", "log-level":
		case "addr":
			addrSet = true
		default:
			other = append(other, "--"+f.Name)
		}
	})
	if len(other) > 0 {
		return config.Config{}, fmt.Errorf("--ingest reads its configuration from the environment, as the functions do: %s do not apply", strings.Join(other, ", "))
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return config.Config{}, fmt.Errorf("invalid configuration (environment): %w", err)
	}
	cfg.MaxBody, cfg.TooLargeMessage = 0, ""
	cfg.BodyTimeout = flags.BodyTimeout
	if getenv(deploy.EnvLogLevel) == "" {
		cfg.LogLevel = flags.LogLevel
	}
	cfg.Addr = net.JoinHostPort("", strconv.Itoa(deploy.IngestPort))
	if addrSet {
		cfg.Addr = flags.Addr
	}
	if cfg.OriginSecret == "" && cfg.OriginSecretARN == "" {
		return config.Config{}, fmt.Errorf("--ingest needs the front door's origin secret (%s or %s): only the front door may reach the ingest service",
			deploy.EnvOriginSecret, deploy.EnvOriginSecretARN)
	}
	return cfg, nil
}
