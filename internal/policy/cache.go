package policy

import (
	"context"
	"sync"
	"time"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// DefaultTTL bounds how stale a cached policy may be: a change takes
// effect on every instance within this time (and at once on the instance
// that made it). Short enough for an operator, long enough that the
// manifest PUT path reads the table about once per TTL per instance.
const DefaultTTL = 10 * time.Second

// Cache holds every live policy for at most TTL and resolves a repository's
// policy (longest prefix) without a store read on the hot path.
type Cache struct {
	store    *Store
	ttl      time.Duration
	now      func() time.Time
	defaults []oci.Policy

	mu       sync.Mutex
	policies []oci.Policy
	loaded   time.Time
}

// NewCache returns a Cache over store; ttl <= 0 means DefaultTTL.
// defaults (deployment configuration, e.g. stack props) apply to their
// prefixes until a stored policy for the same prefix replaces them.
func NewCache(store *Store, ttl time.Duration, defaults ...oci.Policy) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Cache{store: store, ttl: ttl, now: time.Now, defaults: defaults}
}

// TTL is the cache's bound on staleness.
func (c *Cache) TTL() time.Duration { return c.ttl }

// PolicyFor returns the policy of repo. A failed refresh is an error
// rather than a silent fallback: a strict default could wrongly refuse
// a mirror's index, a stale one could wrongly accept.
func (c *Cache) PolicyFor(ctx context.Context, repo string) (oci.Policy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded.IsZero() || c.now().Sub(c.loaded) >= c.ttl {
		recs, err := c.store.List(ctx)
		if err != nil {
			return oci.Policy{}, err
		}
		ps := make([]oci.Policy, 0, len(recs)+len(c.defaults))
		stored := map[string]bool{}
		for _, r := range recs {
			ps = append(ps, r.Policy)
			stored[r.Policy.Prefix] = true
		}
		for _, d := range c.defaults {
			if !stored[d.Prefix] {
				ps = append(ps, d)
			}
		}
		c.policies, c.loaded = ps, c.now()
	}
	return oci.ResolvePolicy(c.policies, repo), nil
}

// Invalidate makes the next PolicyFor reload (after a local change).
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.loaded = time.Time{}
	c.mu.Unlock()
}
