package backend

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage/local"
)

// JanitorInterval is how often `skiff serve` runs the embedded store's
// janitor (and once at start).
const JanitorInterval = time.Hour

// Expired counts what one janitor run removed.
type Expired struct {
	Sessions, Multiparts, Segments int
}

// localJanitor removes what abandoned uploads leave in the embedded store,
// as the bucket's lifecycle rules and the table's TTL do in AWS
// (infra/stacks/storage.go), with the same margins: session items once
// they expire, multipart uploads an hour after the longest a session
// lives, tail segments after twice that. A live session never loses
// anything: sessions end at most DefaultUploadTTL after they start.
func localJanitor(blobs *local.BlobStore, meta *local.MetaStore) func(context.Context, time.Time) (Expired, error) {
	return func(ctx context.Context, now time.Time) (Expired, error) {
		var e Expired
		var err error
		if e.Sessions, err = meta.DeleteUploadsExpiredBefore(ctx, now); err != nil {
			return e, fmt.Errorf("janitor: %w", err)
		}
		if e.Multiparts, err = blobs.AbortMultipartsBefore(ctx, now.Add(-registry.DefaultUploadTTL-time.Hour)); err != nil {
			return e, fmt.Errorf("janitor: %w", err)
		}
		if e.Segments, err = blobs.DeleteObjectsBefore(ctx, registry.ScratchPrefix, now.Add(-2*registry.DefaultUploadTTL)); err != nil {
			return e, fmt.Errorf("janitor: %w", err)
		}
		return e, nil
	}
}

// RunJanitor runs st's janitor now and every interval until ctx is done,
// logging what each run removed. Stores without one (AWS: S3 and DynamoDB
// expire on their own) return at once.
func RunJanitor(ctx context.Context, st Stores, interval time.Duration, log *slog.Logger) {
	if st.Janitor == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		e, err := st.Janitor(ctx, time.Now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("janitor", "err", err.Error())
		case e != Expired{}:
			log.Info("janitor: expired abandoned uploads", "sessions", e.Sessions, "multipart_uploads", e.Multiparts, "segments", e.Segments)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
