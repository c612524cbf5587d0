// Package lambdagc is the scheduled garbage collector's Lambda function:
// EventBridge Scheduler invokes it every few minutes, and each invocation
// goes on with the collection pass in progress, or starts one when the
// last finished an interval ago, until its deadline (internal/gc's
// Scheduled, with the checkpoint in the table). A pass of any length so
// runs across invocations of 15 minutes at most.
package lambdagc

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/lambdaweb"
	"github.com/skiff-registry/skiff/internal/server"
)

// DefaultInterval is the time from one pass's end to the next one's start
// without SKIFF_GC_INTERVAL.
const DefaultInterval = 24 * time.Hour

// maxMarking bounds the two link windows a step waits for its marks to
// settle, in an invocation of at most 15 minutes.
const maxMarking = 10 * time.Minute

// Main is the whole of the function's main: configuration from the
// environment, stores and the collector once per cold start, then
// lambda.Start.
func Main() {
	start, ctx := time.Now(), context.Background()
	cfg, log, stores, must := lambdaweb.Setup(ctx)
	if 2*cfg.LinkWindow > maxMarking {
		must("configuration", fmt.Errorf("a link window of %s leaves an invocation no time to mark: a step waits two of them", cfg.LinkWindow))
	}
	collector, err := server.Collector(cfg, stores, log, false)
	must("collector", err)
	lambdaweb.LogInit(ctx, log, start)
	s := &gc.Scheduled{Collector: collector, Settings: stores.Meta, Interval: cmp.Or(cfg.GCInterval, DefaultInterval)}
	lambda.Start(Handler(s, log))
}

// Handler returns the function's handler: the event (the schedule's
// input) is ignored, the invocation's deadline and request id are the
// context's.
func Handler(s *gc.Scheduled, log *slog.Logger) func(ctx context.Context, event json.RawMessage) (gc.Invocation, error) {
	return func(ctx context.Context, _ json.RawMessage) (gc.Invocation, error) {
		deadline, holder, err := lambdaweb.Scheduled(ctx)
		if err != nil {
			return gc.Invocation{}, err
		}
		inv, err := s.Invoke(ctx, deadline, holder)
		attrs := []any{"outcome", inv.Outcome, "phase", inv.Phase, "steps", inv.Steps, "bytesReclaimed", inv.Report.BytesReclaimed,
			"manifestsDeleted", inv.Report.ManifestsDeleted, "linksDeleted", inv.Report.LinksDeleted, "blobsDeleted", inv.Report.BlobsDeleted}
		if err != nil {
			log.ErrorContext(ctx, "scheduled garbage collection", append(attrs, "error", err.Error())...)
			return inv, err
		}
		log.InfoContext(ctx, "scheduled garbage collection", attrs...)
		inv.Report.Deleted = nil // the log and the checkpoint have the counts; the answer stays small
		return inv, nil
	}
}
