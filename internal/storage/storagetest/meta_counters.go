package storagetest

import (
	"sync"
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
		wantN   int64
		wantEnd time.Duration // after t0
	}{
		{"first event opens a window", "user:alice", 0, 1, window},
		{"same window counts", "user:alice", 10 * time.Second, 2, window},
		{"still open a moment before its end", "user:alice", window - time.Millisecond, 3, window},
		{"at its end a new window opens", "user:alice", window, 1, 2 * window},
		{"keys are independent", "user:alice2", window, 1, 2 * window},
		{"long after, a new window", "user:alice", 10 * window, 1, 11 * window},
	}
	for _, s := range steps {
		c, err := ms.CountEvent(ctx, s.key, t0.Add(s.at), window)
		noErr(t, err)
		if c.N != s.wantN || !sameMilli(c.Ends, t0.Add(s.wantEnd)) {
			t.Errorf("%s: CountEvent(%s) = %d ending %v, want %d ending %v", s.name, s.key, c.N, c.Ends, s.wantN, t0.Add(s.wantEnd))
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

	// Concurrent events, across a window's opening, are all counted: the
	// store's check and write are one atomic step.
	const writers = 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			if _, err := ms.CountEvent(ctx, "addr:192.0.2.1", t0, window); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent CountEvent: %v", err)
	}
	got, err = ms.GetCounts(ctx, []string{"addr:192.0.2.1"}, t0.Add(time.Second))
	noErr(t, err)
	if got["addr:192.0.2.1"].N != writers {
		t.Errorf("after %d concurrent events the count is %d", writers, got["addr:192.0.2.1"].N)
	}
}
