// Command blob is the Lambda function (provided.al2023, Function URL
// behind CloudFront) serving Skiff's blob route group: blobs and uploads (/v2/<name>/blobs/...).
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/lambdaweb"
	"github.com/skiff-registry/skiff/internal/server"
)

func main() {
	start, ctx := time.Now(), context.Background()
	cfg, err := config.FromEnv(os.Getenv)
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	must := func(what string, err error) {
		if err != nil {
			log.Error("init failed: "+what, "error", err)
			os.Exit(1)
		}
	}
	must("configuration", err)
	stores, err := backend.Open(ctx, cfg)
	must("open stores", err)
	srv, err := server.New(ctx, cfg, stores, httpapi.GroupBlob, log)
	must("assemble server", err)
	origin, err := lambdaweb.OriginSecret(ctx, cfg)
	must("origin secret", err)
	lambdaweb.LogInit(ctx, log, start)
	lambda.Start(lambdaweb.Handler(srv.Handler, lambdaweb.WithLogger(log), lambdaweb.WithOrigin(origin)))
}
