package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/skiff-registry/skiff/internal/storage"
)

// Limiter bounds password checks per key (a user name, a source address):
// at most max checks per window that did not succeed. A check reserves its
// attempt in the store before bcrypt runs (storage.Counters.Reserve, one
// conditional write per key), so however many logins arrive at once, on
// however many processes, at most max checks run per key per window; a
// check that succeeds gives its attempt back, so a user who logs in often
// is not locked out by its own successes. A key's window opens at its
// first attempt; once max are used it is refused until that window ends.
// The counts live in the metadata store, so in AWS mode every instance of
// every function counts into the same DynamoDB items, and adding
// instances does not add guesses.
type Limiter struct {
	counters storage.Counters
	max      int64
	window   time.Duration
	now      func() time.Time
}

// NewLimiter allows max checks per key per window, counted in counters.
func NewLimiter(counters storage.Counters, max int, window time.Duration) *Limiter {
	return &Limiter{counters: counters, max: int64(max), window: window, now: time.Now}
}

// LimitError is a login refused before any check: one of its keys used
// its attempts for the window. Wait is how long until that window ends.
type LimitError struct{ Wait time.Duration }

func (e *LimitError) Error() string {
	return fmt.Sprintf("too many failed logins; retry in %s", e.Wait.Round(time.Second))
}

// Reservation is the attempts one check took, one per key.
type Reservation struct {
	keys  []string
	ends  []time.Time
	max   int64
	inner storage.Counters
}

// Release gives the attempts back (the check succeeded), but not to a
// window whose attempts are all used: a user whose password was guessed
// at up to the limit stays locked until the window ends, even when the
// right password arrives in it.
func (r Reservation) Release(ctx context.Context) error {
	var errs []error
	for i, k := range r.keys {
		if err := r.inner.Release(ctx, k, r.ends[i], r.max); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("give back a login attempt: %w", err)
	}
	return nil
}

// Reserve takes one attempt for each of keys, in order. When a key has
// none left, the attempts already taken are given back and the error is a
// *LimitError. A nil Limiter takes nothing (no limit).
func (l *Limiter) Reserve(ctx context.Context, keys ...string) (Reservation, error) {
	if l == nil {
		return Reservation{}, nil
	}
	now := l.now()
	res := Reservation{inner: l.counters, max: l.max}
	for _, k := range keys {
		c, ok, err := l.counters.Reserve(ctx, k, now, l.window, l.max)
		if err == nil && !ok {
			err = &LimitError{Wait: max(c.Ends.Sub(now), time.Second)}
		}
		if err != nil {
			// The attempts taken so far were not used for a check.
			if rerr := res.Release(context.WithoutCancel(ctx)); rerr != nil {
				err = errors.Join(err, rerr)
			}
			var le *LimitError
			if !errors.As(err, &le) {
				err = fmt.Errorf("reserve a login attempt: %w", err)
			}
			return Reservation{}, err
		}
		res.keys, res.ends = append(res.keys, k), append(res.ends, c.Ends)
	}
	return res, nil
}

// Blocked returns a *LimitError when one of keys has no attempt left, for
// a login that needs no check (see verified): one read of the store.
func (l *Limiter) Blocked(ctx context.Context, keys ...string) error {
	if l == nil {
		return nil
	}
	now := l.now()
	counts, err := l.counters.GetCounts(ctx, keys, now)
	if err != nil {
		return fmt.Errorf("read login attempt counts: %w", err)
	}
	var wait time.Duration
	for _, c := range counts {
		if c.N >= l.max {
			wait = max(wait, c.Ends.Sub(now))
		}
	}
	if wait > 0 {
		return &LimitError{Wait: max(wait, time.Second)}
	}
	return nil
}

// AddrKey is the limiter key of a source address. IPv6 addresses count by
// their /64, the block one subscriber usually holds: rotating through it
// gives no fresh attempts.
func AddrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		// Not an address (a proxy passed junk through): all such share
		// one key, so they can neither grow the store nor dodge the limit.
		return "addr:unparsed"
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + ip.String()
}
