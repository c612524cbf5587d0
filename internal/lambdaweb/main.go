package lambdaweb

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/origin"
	"github.com/skiff-registry/skiff/internal/server"
)

// Main is the whole of a function's main: configuration from the
// environment, stores, the server for group, the origin secret, all once
// per cold start, then lambda.Start. The three functions differ only in
// their route group.
func Main(group httpapi.Group) {
	start, ctx := time.Now(), context.Background()
	cfg, log, stores, must := Setup(ctx)
	// The scheduled gc function collects; these functions may not delete
	// what a pass deletes.
	cfg.ScheduledGC = true
	srv, err := server.New(ctx, cfg, stores, group, log)
	must("assemble server", err)
	secret, err := origin.FromConfig(ctx, cfg)
	must("origin secret", err)
	LogInit(ctx, log, start)
	lambda.Start(Handler(srv.Handler, WithLogger(log), WithOrigin(secret)))
}

// Setup is what every function does first, once per cold start: the
// configuration from the environment, a JSON logger on stdout at its
// level, the stores. must logs a failed step and ends the process.
func Setup(ctx context.Context) (cfg config.Config, log *slog.Logger, stores backend.Stores, must func(what string, err error)) {
	cfg, err := config.FromEnv(os.Getenv)
	log = slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	must = func(what string, err error) {
		if err != nil {
			log.Error("init failed: "+what, "error", err)
			os.Exit(1)
		}
	}
	must("configuration", err)
	stores, err = backend.Open(ctx, cfg)
	must("open stores", err)
	return cfg, log, stores, must
}

// Scheduled reads what a scheduled function's invocation gives: its
// deadline, and its request id, which names it as the holder of the work
// it claims ("unknown" outside Lambda's context).
func Scheduled(ctx context.Context) (deadline time.Time, holder string, err error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return deadline, "", errors.New("the invocation has no deadline: run this under Lambda")
	}
	holder = "unknown"
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		holder = lc.AwsRequestID
	}
	return deadline, holder, nil
}
