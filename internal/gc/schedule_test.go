package gc_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/teststores"
)

// TestScheduledSteps runs passes the way the scheduled function does:
// invocations so short that each one visits a few repositories or pages
// before it stores its checkpoint, the next one going on from there. The
// pass that ends after many invocations deletes what one Run does, keeps
// what one Run keeps, with a retention policy in force; then the
// schedule is idle until the interval is over.
func TestScheduledSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, open := range teststores.Backends(t, minPart) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open(t))
			// An orphan: an object no record names.
			orphan := body("orphan", 500)
			key := "blobs/sha256/" + digest.FromBytes(orphan).Encoded() + "/0123456789abcdef"
			if err := f.s.Blobs.Put(ctx, key, int64(len(orphan)), digest.FromBytes(orphan), bytes.NewReader(orphan)); err != nil {
				t.Fatal(err)
			}
			rs := f.retScene()
			sc := f.scene() // sleeps past grace
			for i := range 6 {
				f.image("many/r"+string(rune('a'+i)), "1", body("cfg many", 300+i), body("layer many", 1000+i))
			}
			time.Sleep(grace)
			s := &gc.Scheduled{Collector: f.collector(gc.Options{Retention: rules(keepTwoV)}), Settings: f.s.Meta, Interval: time.Hour, Margin: 10 * time.Second}
			var last gc.Invocation
			phases := map[string]bool{}
			for i := 0; ; i++ {
				if i == 200 {
					t.Fatalf("no end after %d invocations: %+v", i, last)
				}
				// Each invocation has room for its marks to settle and for
				// a little more.
				inv, err := s.Invoke(ctx, time.Now().Add(2*window+10*time.Second+time.Millisecond), "inv-"+string(rune('a'+i%26)))
				if err != nil {
					t.Fatal(err)
				}
				phases[inv.Phase] = true
				last = inv
				if inv.Outcome == "finished" {
					break
				}
				if inv.Outcome != "progress" {
					t.Fatalf("invocation %d: %+v", i, inv)
				}
			}
			if last.Steps < 4 {
				t.Errorf("the pass took %d invocations; the test wants several", last.Steps)
			}
			t.Logf("%d invocations", last.Steps)
			f.check()
			f.wantExpired(rs)
			f.gone("a/x", sc.junk)
			f.gone("c/z", sc.layerC)
			rep := last.Report
			if rep.ManifestsDeleted != 3 || rep.LinksDeleted < 3 || rep.OrphansDeleted != 1 {
				t.Errorf("report over the invocations: %d manifests, %d links, %d orphans; want 3, at least 3, 1", rep.ManifestsDeleted, rep.LinksDeleted, rep.OrphansDeleted)
			}
			if _, err := f.s.Blobs.Stat(ctx, key); err == nil {
				t.Error("the orphan is still there")
			}
			inv, err := s.Invoke(ctx, time.Now().Add(time.Minute), "later")
			if err != nil || inv.Outcome != "idle" || inv.Next == nil {
				t.Errorf("right after a pass: %+v %v, want idle", inv, err)
			}
		})
	}
}

// TestScheduledClaim: of two invocations at once, one holds the pass and
// the other leaves; a claim past its deadline is taken over.
func TestScheduledClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, open := range teststores.Backends(t, minPart) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open(t))
			f.scene()
			block, started := make(chan struct{}), make(chan struct{})
			var once sync.Once
			c := f.collector(gc.Options{BeforeWrite: func(string) error {
				once.Do(func() { close(started); <-block })
				return nil
			}})
			s := &gc.Scheduled{Collector: c, Settings: f.s.Meta, Interval: time.Hour}
			done := make(chan gc.Invocation)
			go func() {
				inv, err := s.Invoke(ctx, time.Now().Add(time.Minute), "first")
				if err != nil {
					t.Error(err)
				}
				done <- inv
			}()
			<-started // the first holds the pass, stopped at its first write
			inv, err := s.Invoke(ctx, time.Now().Add(time.Minute), "second")
			if err != nil {
				t.Fatal(err)
			}
			if inv.Outcome != "busy" {
				t.Fatalf("second invocation: %+v, want busy", inv)
			}
			close(block)
			if first := <-done; first.Outcome != "finished" {
				t.Errorf("first invocation: %+v", first)
			}
			inv, err = s.Invoke(ctx, time.Now().Add(time.Minute), "third")
			if err != nil || inv.Outcome != "idle" {
				t.Errorf("third: %+v %v, want idle", inv, err)
			}
		})
	}
}

// TestScheduledOverrun: a step still at work when its invocation's time
// is nearly up is cut (its store calls fail), stores its checkpoint and
// releases its claim, and the next invocation finishes the pass.
func TestScheduledOverrun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, teststores.Local(t, minPart))
	sc := f.scene()
	slow := true
	c := f.collector(gc.Options{BeforeWrite: func(string) error {
		if slow {
			slow = false
			time.Sleep(600 * time.Millisecond) // past the step's cut
		}
		return nil
	}})
	s := &gc.Scheduled{Collector: c, Settings: f.s.Meta, Interval: time.Hour, Margin: time.Second}
	inv, err := s.Invoke(ctx, time.Now().Add(800*time.Millisecond), "cut")
	if err == nil || inv.Outcome != "progress" {
		t.Fatalf("the cut invocation: %+v, %v; want progress and the step's error", inv, err)
	}
	inv, err = s.Invoke(ctx, time.Now().Add(time.Minute), "next")
	if err != nil || inv.Outcome != "finished" {
		t.Fatalf("the next invocation: %+v, %v; want it to hold the pass and finish it", inv, err)
	}
	f.check()
	f.gone("a/x", sc.junk)
}
