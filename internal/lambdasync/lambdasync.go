// Package lambdasync is the scheduled sync's Lambda function: EventBridge
// Scheduler invokes it every few minutes, and each invocation goes on with
// the run of the stored mirror rules in progress, or starts one when the
// last started an interval ago (internal/syncer), until its deadline.
// Upstream credentials are read from Secrets Manager, by the secret each
// rule names.
package lambdasync

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/skiff-registry/skiff/internal/awsconf"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/lambdaweb"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/server"
	"github.com/skiff-registry/skiff/internal/syncer"
)

// DefaultInterval is the time from one run's start to the next without
// SKIFF_SYNC_INTERVAL.
const DefaultInterval = 24 * time.Hour

// Main is the whole of the function's main: configuration from the
// environment, the stores and the registry's handler once per cold start,
// then lambda.Start.
func Main() {
	start, ctx := time.Now(), context.Background()
	cfg, log, stores, must := lambdaweb.Setup(ctx)
	// The handler the sync writes through is served on this function's
	// loopback alone: no credentials, no body limit, no operator API.
	local := cfg
	local.Auth, local.MaxBody, local.OperatorAPI = false, 0, false
	// Its requests are the sync's own: logged when they fail, not each.
	quiet := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(ctx, local, stores, httpapi.GroupAll, quiet)
	must("registry", err)
	awsCfg, err := awsconf.Load(ctx)
	must("AWS configuration", err)
	sm := secretsmanager.NewFromConfig(awsCfg)
	lambdaweb.LogInit(ctx, log, start)
	s := &syncer.Syncer{
		Rules: mirror.NewStore(stores.Meta), Settings: stores.Meta, Handler: srv.Handler,
		Secret:   SecretReader(sm),
		Interval: cmp.Or(cfg.SyncInterval, DefaultInterval), Log: log,
	}
	lambda.Start(Handler(s, log))
}

// SecretsAPI is the Secrets Manager call the sync makes.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretReader reads a rule's upstream credentials: a secret whose string
// is {"username": "...", "password": "..."}.
func SecretReader(sm SecretsAPI) func(ctx context.Context, id string) (string, string, error) {
	return func(ctx context.Context, id string) (string, string, error) {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &id})
		if err != nil {
			return "", "", err
		}
		if out.SecretString == nil {
			return "", "", errors.New("the secret has no string value; want {\"username\": ..., \"password\": ...}")
		}
		var cred struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := json.Unmarshal([]byte(*out.SecretString), &cred); err != nil || cred.Username == "" || cred.Password == "" {
			return "", "", fmt.Errorf("the secret's string is not {\"username\": ..., \"password\": ...}")
		}
		return cred.Username, cred.Password, nil
	}
}

// Handler returns the function's handler: the event (the schedule's input)
// is ignored, the invocation's deadline and request id are the context's.
func Handler(s *syncer.Syncer, log *slog.Logger) func(ctx context.Context, event json.RawMessage) (syncer.Invocation, error) {
	return func(ctx context.Context, _ json.RawMessage) (syncer.Invocation, error) {
		deadline, holder, err := lambdaweb.Scheduled(ctx)
		if err != nil {
			return syncer.Invocation{}, err
		}
		inv, err := s.Invoke(ctx, deadline, holder)
		attrs := []any{"outcome", inv.Outcome, "ran", inv.Ran, "left", inv.Left}
		if err != nil {
			log.ErrorContext(ctx, "scheduled sync", append(attrs, "error", err.Error())...)
			return inv, err
		}
		log.InfoContext(ctx, "scheduled sync", attrs...)
		return inv, nil
	}
}
