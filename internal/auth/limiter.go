package auth

import (
	"sync"
	"time"
)

// Limiter counts failed logins per key (a user name, a source address) and
// refuses a key that failed max times within window until the window has
// passed since its first failure. State is per process: in AWS mode each
// function instance counts on its own (a WAF rate rule at the front door
// is the shared limit).
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	first time.Time
	n     int
}

// NewLimiter allows max failures per key per window.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, now: time.Now, keys: map[string]*failures{}}
}

// Blocked reports whether any of keys is blocked and for how long.
func (l *Limiter) Blocked(keys ...string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		f, ok := l.keys[k]
		if !ok {
			continue
		}
		if now.Sub(f.first) >= l.window {
			delete(l.keys, k)
			continue
		}
		if f.n >= l.max {
			wait = max(wait, l.window-now.Sub(f.first))
		}
	}
	return wait, wait > 0
}

// Fail records a failed login for each of keys.
func (l *Limiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.keys) > 100_000 { // bound memory under a flood of distinct keys
		for k, f := range l.keys {
			if now.Sub(f.first) >= l.window {
				delete(l.keys, k)
			}
		}
	}
	for _, k := range keys {
		f, ok := l.keys[k]
		if !ok || now.Sub(f.first) >= l.window {
			f = &failures{first: now}
			l.keys[k] = f
		}
		f.n++
	}
}
