package lambdagc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/lambdagc"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/teststores"
)

// TestHandler invokes the function's handler as Lambda does, each time
// with a deadline too short for the whole pass and a request id of its
// own, until the pass ends: the blob nothing names and the orphan object
// are gone, and the next invocation is idle.
func TestHandler(t *testing.T) {
	t.Parallel()
	const grace, window = 1500 * time.Millisecond, 200 * time.Millisecond
	for name, open := range teststores.Backends(t, 40<<10) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := open(t)
			reg, err := registry.New(s.Blobs, s.Meta, registry.WithGrace(grace), registry.WithLinkWindow(window))
			if err != nil {
				t.Fatal(err)
			}
			var unnamed []digest.Digest
			for i := range 5 {
				b := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
				d := digest.FromBytes(b)
				if _, err := reg.PutBlob(ctx, "repo"+string(rune('a'+i)), d, int64(len(b)), bytes.NewReader(b)); err != nil {
					t.Fatal(err)
				}
				unnamed = append(unnamed, d)
			}
			orphan := []byte("an object no record names")
			key := "blobs/sha256/" + digest.FromBytes(orphan).Encoded() + "/00112233445566aa"
			if err := s.Blobs.Put(ctx, key, int64(len(orphan)), digest.FromBytes(orphan), bytes.NewReader(orphan)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(grace + 100*time.Millisecond)

			c, err := gc.New(s.Blobs, s.Meta, gc.Options{Grace: grace, Window: window})
			if err != nil {
				t.Fatal(err)
			}
			h := lambdagc.Handler(&gc.Scheduled{Collector: c, Settings: s.Meta, Interval: time.Hour, Margin: 10 * time.Second}, slog.New(slog.DiscardHandler))
			invoke := func(id string, budget time.Duration) gc.Invocation {
				t.Helper()
				ictx, cancel := context.WithTimeout(lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: id}), budget)
				defer cancel()
				inv, err := h(ictx, json.RawMessage(`{"source":"skiff-gc"}`))
				if err != nil {
					t.Fatalf("invocation %s: %v", id, err)
				}
				return inv
			}
			var inv gc.Invocation
			for i := 0; inv.Outcome != "finished"; i++ {
				if i == 100 {
					t.Fatalf("no end after %d invocations: %+v", i, inv)
				}
				inv = invoke("req-"+string(rune('a'+i%26))+string(rune('a'+i/26)), 2*window+10*time.Second)
				if inv.Outcome != "progress" && inv.Outcome != "finished" {
					t.Fatalf("invocation %d: %+v", i, inv)
				}
			}
			if inv.Steps < 3 || inv.Report.LinksDeleted != 5 || inv.Report.OrphansDeleted != 1 || inv.Report.BlobsDeleted != 5 {
				t.Errorf("after %d invocations: %d links, %d blobs, %d orphans deleted; want several invocations, 5, 5, 1",
					inv.Steps, inv.Report.LinksDeleted, inv.Report.BlobsDeleted, inv.Report.OrphansDeleted)
			}
			for i, d := range unnamed {
				if _, err := reg.StatBlob(ctx, "repo"+string(rune('a'+i)), d); err == nil {
					t.Errorf("unnamed blob %s is still in repo%c", d, 'a'+i)
				}
			}
			if _, err := s.Blobs.Stat(ctx, key); err == nil {
				t.Error("the orphan is still there")
			}
			if inv := invoke("later", time.Minute); inv.Outcome != "idle" {
				t.Errorf("the next invocation: %+v, want idle", inv)
			}
			if _, err := h(ctx, nil); err == nil {
				t.Error("an invocation without a deadline ran")
			}
		})
	}
}
