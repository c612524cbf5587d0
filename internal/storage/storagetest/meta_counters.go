package storagetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/storage"
)

// sameMilli: stores keep window ends to the millisecond.
func sameMilli(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -time.Millisecond && d < time.Millisecond
}

func testMetaCounters(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const window = time.Minute
	steps := []struct {
		name    string
		key     string
		at      time.Duration // after t0
		limit   int64
		wantN   int64
		wantOK  bool
		wantEnd time.Duration // after t0
	}{
		{"first event opens a window", "user:alice", 0, 0, 1, true, window},
		{"same window counts", "user:alice", 10 * time.Second, 0, 2, true, window},
		{"still open a moment before its end", "user:alice", window - time.Millisecond, 0, 3, true, window},
		{"at its end a new window opens", "user:alice", window, 0, 1, true, 2 * window},
		{"keys are independent", "user:alice2", window, 0, 1, true, 2 * window},
		{"long after, a new window", "user:alice", 10 * window, 0, 1, true, 11 * window},
		{"below the limit counts", "addr:limited", 0, 2, 1, true, window},
		{"up to the limit counts", "addr:limited", time.Second, 2, 2, true, window},
		{"at the limit is refused, with the window", "addr:limited", 2 * time.Second, 2, 2, false, window},
		{"still refused", "addr:limited", window - time.Millisecond, 2, 2, false, window},
		{"a new window opens below the limit", "addr:limited", window, 2, 1, true, 2 * window},
		{"a limit of one", "addr:one", 0, 1, 1, true, window},
		{"a limit of one refuses the second", "addr:one", 0, 1, 1, false, window},
	}
	for _, s := range steps {
		c, ok, err := ms.Reserve(ctx, s.key, t0.Add(s.at), window, s.limit)
		noErr(t, err)
		if c.N != s.wantN || ok != s.wantOK || !sameMilli(c.Ends, t0.Add(s.wantEnd)) {
			t.Errorf("%s: Reserve(%s, limit %d) = %d, %v ending %v, want %d, %v ending %v",
				s.name, s.key, s.limit, c.N, ok, c.Ends, s.wantN, s.wantOK, t0.Add(s.wantEnd))
		}
	}

	at := t0.Add(10*window + time.Second)
	got, err := ms.GetCounts(ctx, []string{"user:alice", "user:alice2", "addr:nobody", "user:alice"}, at)
	noErr(t, err)
	if len(got) != 1 || got["user:alice"].N != 1 || !sameMilli(got["user:alice"].Ends, t0.Add(11*window)) {
		t.Errorf("GetCounts at %v = %v, want only user:alice at 1 (user:alice2's window ended)", at, got)
	}
	got, err = ms.GetCounts(ctx, nil, at)
	noErr(t, err)
	if len(got) != 0 {
		t.Errorf("GetCounts of no keys = %v", got)
	}

	t.Run("Release", func(t *testing.T) {
		key := "user:release"
		c, ok, err := ms.Reserve(ctx, key, t0, window, 1)
		noErr(t, err)
		if !ok {
			t.Fatalf("first Reserve refused: %v", c)
		}
		if _, ok, _ := ms.Reserve(ctx, key, t0, window, 1); ok {
			t.Fatal("Reserve over the limit counted")
		}
		noErr(t, ms.Release(ctx, key, c.Ends, 0))
		if c2, ok, err := ms.Reserve(ctx, key, t0.Add(time.Second), window, 1); err != nil || !ok || c2.N != 1 {
			t.Errorf("after Release, Reserve = %v, %v, %v; want counted at 1", c2, ok, err)
		}
		// Released twice: the count stays at zero, never below.
		noErr(t, ms.Release(ctx, key, c.Ends, 0))
		noErr(t, ms.Release(ctx, key, c.Ends, 0))
		got, err := ms.GetCounts(ctx, []string{key}, t0.Add(2*time.Second))
		noErr(t, err)
		if n := got[key].N; n != 0 {
			t.Errorf("after two Releases of one event the count is %d, want 0", n)
		}
		// A release for a window that is over leaves the new one alone.
		c3, ok, err := ms.Reserve(ctx, key, t0.Add(window), window, 5)
		noErr(t, err)
		if !ok || c3.N != 1 {
			t.Fatalf("Reserve in the next window = %v, %v", c3, ok)
		}
		noErr(t, ms.Release(ctx, key, c.Ends, 0))
		got, err = ms.GetCounts(ctx, []string{key}, t0.Add(window+time.Second))
		noErr(t, err)
		if n := got[key].N; n != 1 {
			t.Errorf("a Release for an ended window changed the open one to %d, want 1", n)
		}
		noErr(t, ms.Release(ctx, "user:never-counted", c.Ends, 0))

		// A window used up to its limit stays closed: Release with the
		// limit gives nothing back there, but does below it.
		full, _, err := ms.Reserve(ctx, "user:full", t0, window, 2)
		noErr(t, err)
		_, ok, err = ms.Reserve(ctx, "user:full", t0, window, 2)
		noErr(t, err)
		if !ok {
			t.Fatal("second Reserve under a limit of 2 refused")
		}
		noErr(t, ms.Release(ctx, "user:full", full.Ends, 2))
		if _, ok, _ := ms.Reserve(ctx, "user:full", t0, window, 2); ok {
			t.Error("Release gave back an attempt of a used-up window")
		}
		one, _, err := ms.Reserve(ctx, "user:below", t0, window, 2)
		noErr(t, err)
		noErr(t, ms.Release(ctx, "user:below", one.Ends, 2))
		got, err = ms.GetCounts(ctx, []string{"user:below"}, t0)
		noErr(t, err)
		if n := got["user:below"].N; n != 0 {
			t.Errorf("Release below the limit left the count at %d, want 0", n)
		}
	})

	// Concurrent events, across a window's opening, are all counted: the
	// store's check and write are one atomic step.
	t.Run("concurrent unlimited", func(t *testing.T) {
		const writers = 20
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for range writers {
			wg.Go(func() {
				if _, _, err := ms.Reserve(ctx, "addr:192.0.2.1", t0, window, 0); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Reserve: %v", err)
		}
		got, err := ms.GetCounts(ctx, []string{"addr:192.0.2.1"}, t0.Add(time.Second))
		noErr(t, err)
		if got["addr:192.0.2.1"].N != writers {
			t.Errorf("after %d concurrent events the count is %d", writers, got["addr:192.0.2.1"].N)
		}
	})

	// Under a limit, of many concurrent reservations exactly the limit
	// win, across the window's opening: no check-then-write gap.
	t.Run("concurrent limited", func(t *testing.T) {
		const writers, limit = 100, 10
		var wg sync.WaitGroup
		var counted atomic.Int64
		errs := make(chan error, writers)
		for range writers {
			wg.Go(func() {
				_, ok, err := ms.Reserve(ctx, "user:flooded", t0, window, limit)
				if err != nil {
					errs <- err
				}
				if ok {
					counted.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Reserve: %v", err)
		}
		if n := counted.Load(); n != limit {
			t.Errorf("%d concurrent reservations under a limit of %d: %d counted", writers, limit, n)
		}
		got, err := ms.GetCounts(ctx, []string{"user:flooded"}, t0.Add(time.Second))
		noErr(t, err)
		if n := got["user:flooded"].N; n != limit {
			t.Errorf("stored count %d, want %d", n, limit)
		}
	})
}
