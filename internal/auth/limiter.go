package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/skiff-registry/skiff/internal/storage"
)

// Limiter counts failed logins per key (a user name, a source address) and
// refuses a key that failed max times in a window until that window ends;
// a key's window opens at its first failure. The counts live in the
// metadata store (storage.Counters), so every process on it shares them:
// in AWS mode, every instance of every function counts into the same
// DynamoDB items, and adding instances does not add guesses.
//
// Blocked and Fail are separate steps, so requests already past Blocked
// when the limit is reached still get their answer: at most the number of
// logins in flight at that moment exceed it.
type Limiter struct {
	counters storage.Counters
	max      int64
	window   time.Duration
	now      func() time.Time
}

// NewLimiter allows max failures per key per window, counted in counters.
func NewLimiter(counters storage.Counters, max int, window time.Duration) *Limiter {
	return &Limiter{counters: counters, max: int64(max), window: window, now: time.Now}
}

// Blocked returns how long the most constrained of keys stays blocked, 0
// when none is: one read of the store.
func (l *Limiter) Blocked(ctx context.Context, keys ...string) (time.Duration, error) {
	now := l.now()
	counts, err := l.counters.GetCounts(ctx, keys, now)
	if err != nil {
		return 0, fmt.Errorf("read failed-login counts: %w", err)
	}
	var wait time.Duration
	for _, c := range counts {
		if c.N >= l.max {
			wait = max(wait, c.Ends.Sub(now))
		}
	}
	return wait, nil
}

// Fail records a failed login for each of keys.
func (l *Limiter) Fail(ctx context.Context, keys ...string) error {
	now := l.now()
	for _, k := range keys {
		if _, err := l.counters.CountEvent(ctx, k, now, l.window); err != nil {
			return fmt.Errorf("count a failed login: %w", err)
		}
	}
	return nil
}
