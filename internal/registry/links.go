package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// How pushes and the collector (internal/gc) stay out of each other's way,
// with single-item conditional writes only (docs/gc.md has the argument):
//
//   - Bytes are stored at a key of their own (ownKey), never at a key
//     another push may be writing, then adopted: UpsertContent keeps the
//     first copy of a digest and every later push of it links to that
//     copy and deletes its own (one stored copy per digest).
//   - Every link is written within LinkWindow of an UpsertContent or
//     TouchContent of its digest, which sets the record's Linked. The
//     collector deletes a record only if Linked is older than its pass
//     less two windows, so any link made since is one it saw.
//   - A manifest is stored within LinkWindow of reading the links it
//     names; the collector waits two windows between marking a link and
//     deleting it, and looks at the manifests again first. A push that
//     finds a link marked refreshes it, which undoes the mark.
//   - A HEAD of a link older than half the grace period refreshes it, so a
//     blob a client found present outlives the rest of its push.

// DefaultLinkWindow is LinkWindow's default.
const DefaultLinkWindow = time.Minute

// DefaultGrace is how long the collector keeps anything young.
const DefaultGrace = 24 * time.Hour

// WithLinkWindow sets the longest a push may take between observing a
// blob (its content record, its links) and writing what names it (default
// DefaultLinkWindow); a write that would come later fails and the client
// retries. The collector must use the same window. Tests shorten it.
func WithLinkWindow(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("registry: link window must be positive")
		}
		o.linkWindow = d
		return nil
	}
}

// WithGrace sets the collector's grace period (default DefaultGrace); a
// HEAD refreshes links older than half of it.
func WithGrace(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("registry: grace period must be positive")
		}
		o.grace = d
		return nil
	}
}

// LinkWindow is the registry's link window.
func (r *Registry) LinkWindow() time.Duration { return r.opts.linkWindow }

// ownKey is where one push stores the bytes of d: a key no other push
// writes, so a collector deleting another copy never deletes these.
func ownKey(d digest.Digest, nonce string) string {
	return fmt.Sprintf("blobs/%s/%s/%s", d.Algorithm(), d.Encoded(), nonce)
}

// adopt records the bytes of d stored at key as its copy, unless another
// copy is recorded: then key is deleted and that copy returned. The time
// returned starts the link window.
func (r *Registry) adopt(ctx context.Context, d digest.Digest, size int64, key string) (storage.Content, time.Time, error) {
	now := r.opts.now().UTC()
	c, err := r.meta.UpsertContent(ctx, storage.Content{Digest: d, Size: size, Key: key, Linked: now})
	if err != nil {
		return c, now, fmt.Errorf("record content %s: %w", d, err)
	}
	if c.Size != size {
		return c, now, fmt.Errorf("content %s is recorded with %d bytes, not %d", d, c.Size, size)
	}
	if c.Key != key {
		// Another push stored it first: one copy is enough. A failed
		// delete leaves garbage the collector finds, never a visible state.
		if err := r.blobs.Delete(ctx, key); err != nil {
			r.opts.log.WarnContext(ctx, "delete duplicate copy", "digest", d.String(), "key", key, "error", err.Error())
		}
	}
	return c, now, nil
}

// link writes the link of c into repo, before the window that opened at
// since closes. The repository is recorded first (once per process) among
// those with links: the collector visits them, and a link in one it never
// visited would keep naming a copy it deletes.
func (r *Registry) link(ctx context.Context, repo string, c storage.Content, since time.Time) (storage.Blob, error) {
	for attempt := 0; ; attempt++ {
		b, err := r.linkWithin(ctx, repo, c, since)
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || attempt == 1 {
			return b, err
		}
		// The store was slow and the window closed: touch the record
		// again, which opens a new one (the copy may have been collected
		// meanwhile: then the push fails and the client retries).
		since = r.opts.now().UTC()
		d := c.Digest
		if c, err = r.meta.TouchContent(ctx, d, since); err != nil {
			return storage.Blob{}, fmt.Errorf("touch content %s again: %w", d, err)
		}
	}
}

func (r *Registry) linkWithin(ctx context.Context, repo string, c storage.Content, since time.Time) (storage.Blob, error) {
	ctx, cancel := context.WithDeadline(ctx, since.Add(r.opts.linkWindow))
	defer cancel()
	if err := r.recordLinked(ctx, repo); err != nil {
		return storage.Blob{}, err
	}
	b := storage.Blob{Digest: c.Digest, Size: c.Size, Key: c.Key, Linked: r.opts.now().UTC()}
	if err := r.meta.PutBlob(ctx, repo, b); err != nil {
		return storage.Blob{}, fmt.Errorf("link blob %s into %s: %w", c.Digest, repo, err)
	}
	return b, nil
}

// HeadBlob is StatBlob for a client checking whether to push d: a link the
// collector may soon take (marked, or older than half the grace period) is
// refreshed, so it outlives the push that relies on it.
func (r *Registry) HeadBlob(ctx context.Context, repo string, d digest.Digest) (storage.Blob, error) {
	b, err := r.StatBlob(ctx, repo, d)
	if err != nil {
		return b, err
	}
	now := r.opts.now().UTC()
	if b.Doomed == "" && now.Sub(b.Linked) < r.opts.grace/2 {
		return b, nil
	}
	if b.Doomed == "" && r.refreshed.recent(repo, d, now, r.opts.grace/4) {
		return b, nil
	}
	nb, err := r.meta.RefreshBlob(ctx, repo, d, now)
	if errors.Is(err, storage.ErrNotFound) {
		return r.StatBlob(ctx, repo, d) // collected meanwhile: BLOB_UNKNOWN
	}
	if err != nil {
		return b, fmt.Errorf("refresh blob %s in %s: %w", d, repo, err)
	}
	r.refreshed.add(repo, d, now)
	return nb, nil
}

// UseManifest records a use of m, found by digest (a HEAD or GET), the
// way HeadBlob does for links: a client that found it may name it in an
// index for half the grace period, and a retention rule's mark on it goes.
func (r *Registry) UseManifest(ctx context.Context, repo string, m storage.Manifest) (storage.Manifest, error) {
	now := r.opts.now().UTC()
	if m.Doomed == "" && now.Sub(m.Age()) < r.opts.grace/2 {
		return m, nil
	}
	const kind = "manifest "
	if m.Doomed == "" && r.refreshed.recent(kind+repo, m.Digest, now, r.opts.grace/4) {
		return m, nil
	}
	nm, err := r.meta.RefreshManifest(ctx, repo, m.Digest, now)
	if errors.Is(err, storage.ErrNotFound) {
		return m, r.unknownManifest(ctx, repo, m.Digest) // collected meanwhile
	}
	if err != nil {
		// Best effort: a pull must not fail for it. At worst a rule deletes
		// the manifest, and an index naming it later is refused (a 4xx).
		r.opts.log.WarnContext(ctx, "could not record a use of a manifest", "repository", repo, "digest", m.Digest.String(), "error", err.Error())
		return m, nil
	}
	r.refreshed.add(kind+repo, m.Digest, now)
	return nm, nil
}

// refreshes remembers the links this process refreshed lately, so a burst
// of HEADs of one old link writes once.
type refreshes struct {
	mu sync.Mutex
	m  map[string]time.Time
}

const maxRefreshes = 10000

func (f *refreshes) recent(repo string, d digest.Digest, now time.Time, within time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.m[repo+"@"+string(d)]
	return ok && now.Sub(t) < within
}

func (f *refreshes) add(repo string, d digest.Digest, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil || len(f.m) >= maxRefreshes {
		f.m = make(map[string]time.Time)
	}
	f.m[repo+"@"+string(d)] = now
}
