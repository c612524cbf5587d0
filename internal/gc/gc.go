// Package gc is Skiff's online garbage collector. A pass marks what is
// reachable and sweeps the rest while pushes go on, with the conditional
// single-item writes of the storage ports and the timing rules the
// registry keeps (internal/registry/links.go):
//
//  0. Retention. In the repositories a retention rule covers, the
//     manifests and tags it expires are deleted, with the same two-window
//     marks as links (retention.go). Elsewhere manifests and tags are
//     never deleted: untagged manifests are kept, and everything they name.
//  1. Links. For each repository of the catalog: the blobs its manifests
//     name (config, layers; a large manifest's own body) are live. A link
//     no manifest names, older than the grace period, is marked (DoomBlob).
//     Two link windows later the repository's manifests are read again:
//     a link one of them names now is refreshed (kept), the others are
//     deleted only if still marked (DeleteDoomedBlob). A push that finds a
//     link marked refreshes it first, so the delete fails.
//  2. Contents. A content record whose digest no live link or manifest
//     names, last linked before the pass began (less the grace period and
//     two windows), is deleted if that still holds (DeleteContent), then
//     its object. A push links within one window of setting the record's
//     Linked, so any link it made is one step 1 saw.
//  3. Orphans. An object under blobs/ that no record, live link or
//     manifest names, older than the grace period, is deleted: the copy a
//     crash or a lost race left. A multipart object is told apart by the
//     session that assembled it (kept for it, with its digest).
//
// Every step is idempotent, so a pass that stops anywhere leaves a valid
// state and the next one finishes.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Options configure a Collector.
type Options struct {
	// Grace keeps anything younger: a blob committed but not yet named by
	// a manifest, a copy being written. Default registry.DefaultGrace.
	Grace time.Duration
	// Window is the registry's link window (registry.WithLinkWindow);
	// default registry.DefaultLinkWindow.
	Window time.Duration
	// DryRun reports what a pass would delete and writes nothing.
	DryRun bool
	Log    *slog.Logger
	// Now and Sleep default to the clock; tests replace them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// BeforeWrite, when set, is called before each write with what it is
	// about to do; an error stops the pass there (crash-point tests).
	BeforeWrite func(step string) error
	// Retention returns the retention rules in force (stored and the
	// deployment's defaults); nil: none, no manifest is deleted.
	Retention func(ctx context.Context) ([]oci.Retention, error)
}

// Collector runs collection passes over one registry's stores.
type Collector struct {
	blobs storage.BlobStore
	meta  storage.MetaStore
	opts  Options
}

// New returns a Collector; zero options take their defaults.
func New(blobs storage.BlobStore, meta storage.MetaStore, o Options) (*Collector, error) {
	if o.Grace == 0 {
		o.Grace = registry.DefaultGrace
	}
	if o.Window == 0 {
		o.Window = registry.DefaultLinkWindow
	}
	if o.Grace < 0 || o.Window < 0 {
		return nil, errors.New("gc: grace period and link window must be positive")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return &Collector{blobs: blobs, meta: meta, opts: o}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Deletion is one thing a pass deleted (or, dry, would delete).
type Deletion struct {
	// Kind is "tag" or "manifest" (a retention rule's), "link", "blob" (a
	// digest's stored copy) or "orphan".
	Kind   string        `json:"kind"`
	Repo   string        `json:"repo,omitempty"`
	Tag    string        `json:"tag,omitempty"`
	Digest digest.Digest `json:"digest,omitempty"`
	Key    string        `json:"key,omitempty"`
	Size   int64         `json:"size"`
}

// Report says what a pass looked at and what it deleted.
type Report struct {
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
	DryRun       bool      `json:"dryRun"`
	Grace        string    `json:"grace"`
	Repositories int       `json:"repositories"`
	Manifests    int       `json:"manifests"`
	Links        int       `json:"links"`
	Contents     int       `json:"contents"`
	Objects      int       `json:"objects"`
	// Retained counts the repositories a retention rule covers.
	Retained         int        `json:"retained"`
	TagsDeleted      int        `json:"tagsDeleted"`
	ManifestsDeleted int        `json:"manifestsDeleted"`
	LinksDeleted     int        `json:"linksDeleted"`
	BlobsDeleted     int        `json:"blobsDeleted"`
	OrphansDeleted   int        `json:"orphansDeleted"`
	BytesReclaimed   int64      `json:"bytesReclaimed"`
	Deleted          []Deletion `json:"deleted"`
	// Truncated: more was deleted than Deleted lists (maxListed).
	Truncated bool `json:"truncated,omitempty"`
}

// maxListed caps Report.Deleted; the counts go on.
const maxListed = 100_000

func (r *Report) add(d Deletion) {
	if len(r.Deleted) < maxListed {
		r.Deleted = append(r.Deleted, d)
	} else {
		r.Truncated = true
	}
	switch d.Kind {
	case "tag":
		r.TagsDeleted++
		return
	case "manifest":
		// Metadata; a large body's object goes with the blobs.
		r.ManifestsDeleted++
		return
	case "link":
		r.LinksDeleted++
		return
	case "blob":
		r.BlobsDeleted++
	case "orphan":
		r.OrphansDeleted++
	}
	r.BytesReclaimed += d.Size
}

// pass is one collection.
type pass struct {
	c     *Collector
	token string
	t0    time.Time
	// live are digests a kept link or manifest names; liveKeys the
	// objects they name (links older than content records name theirs).
	live     map[digest.Digest]bool
	liveKeys map[string]bool
	// records are the keys content records named when listed.
	records map[string]bool
	pending []doomed
	// until is when a Step should be done (zero: no limit); worked says it
	// has done a unit of work (a repository, a page).
	until  time.Time
	worked bool
	// manifests are the manifests marked by retention, per repository.
	manifests []markedManifests
	rep       Report
}

// doomed are the links a pass marked in one repository, and when.
type doomed struct {
	repo  string
	links []storage.Blob
	at    time.Time
}

// Run makes one pass and reports it. On an error the report says what was
// done before it.
func (c *Collector) Run(ctx context.Context) (Report, error) {
	var cp Checkpoint
	err := c.Step(ctx, &cp, time.Time{})
	return cp.Report, err
}

// Step goes on with the pass cp describes (a zero cp starts one) until
// it is done (cp.Phase is PhaseDone) or until comes near (zero: no
// limit), and leaves in cp where it stopped, for a later Step, in this
// process or another. Marks are always settled before it returns: it
// stops marking two link windows before until. On an error cp still
// holds a valid place to go on from.
func (c *Collector) Step(ctx context.Context, cp *Checkpoint, until time.Time) error {
	now := c.opts.Now().UTC()
	if cp.Phase == "" || cp.Phase == PhaseDone {
		*cp = Checkpoint{
			Token:   "gc-" + strconv.FormatInt(now.UnixNano(), 10),
			Started: now,
			Phase:   PhaseRetention,
			Report:  Report{Started: now, DryRun: c.opts.DryRun, Grace: c.opts.Grace.String(), Deleted: []Deletion{}},
		}
	}
	if cp.Report.Deleted == nil {
		cp.Report.Deleted = []Deletion{}
	}
	cp.Steps++
	p := &pass{
		c:        c,
		token:    cp.Token,
		t0:       cp.Started,
		until:    until,
		live:     map[digest.Digest]bool{},
		liveKeys: map[string]bool{},
		records:  map[string]bool{},
		rep:      cp.Report,
	}
	err := p.run(ctx, cp)
	p.rep.Finished = c.opts.Now().UTC()
	cp.Report = p.rep
	switch {
	case err != nil:
		c.opts.Log.WarnContext(ctx, "garbage collection stopped", "error", err.Error(), "phase", cp.Phase, "bytesReclaimed", p.rep.BytesReclaimed)
		return err
	case cp.Phase != PhaseDone:
		c.opts.Log.InfoContext(ctx, "garbage collection goes on later", "phase", cp.Phase, "after", cp.After, "steps", cp.Steps,
			"bytesReclaimed", p.rep.BytesReclaimed)
		return nil
	}
	c.opts.Log.InfoContext(ctx, "garbage collection", "dryRun", c.opts.DryRun, "repositories", p.rep.Repositories,
		"tagsDeleted", p.rep.TagsDeleted, "manifestsDeleted", p.rep.ManifestsDeleted, "linksDeleted", p.rep.LinksDeleted, "blobsDeleted", p.rep.BlobsDeleted, "orphansDeleted", p.rep.OrphansDeleted,
		"bytesReclaimed", p.rep.BytesReclaimed, "seconds", p.rep.Finished.Sub(p.rep.Started).Seconds(), "steps", cp.Steps)
	return nil
}

// The phases of a pass, in order.
const (
	PhaseRetention = "retention"
	PhaseLinks     = "links"
	PhaseContents  = "contents"
	PhaseOrphans   = "orphans"
	PhaseDone      = "done"
)

// Checkpoint is where a pass stands: enough to go on with it in another
// process (the scheduled function stores it between invocations). The
// sets a phase needs from the one before are read again when it starts in
// a later Step: every step is idempotent, and reading them later only
// makes them more current.
type Checkpoint struct {
	Token   string    `json:"token"`
	Started time.Time `json:"started"`
	Phase   string    `json:"phase"`
	// After is the last repository, digest or object key the phase
	// finished.
	After  string `json:"after,omitempty"`
	Steps  int    `json:"steps"`
	Report Report `json:"report"`
}

// stopping reports whether a Step should stop before more work; marking
// needs two windows to settle.
func (p *pass) stopping(marking bool) bool {
	if p.until.IsZero() || !p.worked {
		return false // every step gets something done, however short
	}
	left := p.until.Sub(p.c.opts.Now())
	if marking {
		left -= 2 * p.c.opts.Window
	}
	return left <= 0
}

func (p *pass) run(ctx context.Context, cp *Checkpoint) error {
	// The catalog (repositories with manifests) and the repositories with
	// links: a manifest may name no link (a sparse index), a link may have
	// no manifest yet.
	repos, err := listAll(ctx, p.c.meta.ListRepositories)
	if err != nil {
		return err
	}
	linked, err := listAll(ctx, p.c.meta.ListLinkedRepositories)
	if err != nil {
		return err
	}
	if cp.Phase == PhaseRetention {
		done, err := p.retention(ctx, repos, cp)
		if err != nil || !done {
			return err
		}
		cp.Phase, cp.After = PhaseLinks, ""
	}
	// The live set is complete if this step visited every repository.
	complete := cp.Phase == PhaseLinks && cp.After == ""
	if cp.Phase == PhaseLinks {
		for _, repo := range slices.Compact(slices.Sorted(slices.Values(append(repos, linked...)))) {
			if repo <= cp.After {
				continue
			}
			if p.stopping(true) {
				return p.settle(ctx, true)
			}
			if err := p.repository(ctx, repo); err != nil {
				return err
			}
			if err := p.settle(ctx, false); err != nil {
				return err
			}
			// A stop from here leaves the marks of the repositories since
			// the last settled one; the next pass adopts them.
			cp.After, p.worked = repo, true
		}
		if err := p.settle(ctx, true); err != nil {
			return err
		}
		cp.Phase, cp.After = PhaseContents, ""
	}
	if !complete {
		if err := p.readLive(ctx, append(repos, linked...)); err != nil {
			return err
		}
	}
	if cp.Phase == PhaseContents {
		// The records an orphans phase skips are complete if this step
		// listed them all.
		complete = complete && cp.After == ""
		done, err := p.contents(ctx, cp)
		if err != nil || !done {
			return err
		}
		cp.Phase, cp.After = PhaseOrphans, ""
	} else {
		complete = false
	}
	if cp.Phase == PhaseOrphans {
		if !complete {
			if err := p.readRecords(ctx); err != nil {
				return err
			}
		}
		done, err := p.orphans(ctx, cp)
		if err != nil || !done {
			return err
		}
		cp.Phase, cp.After = PhaseDone, ""
	}
	return nil
}

// readLive reads the live set a step did not build itself: every link and
// every large manifest's body is live (the links phase has deleted what it
// will).
func (p *pass) readLive(ctx context.Context, repos []string) error {
	for _, repo := range slices.Compact(slices.Sorted(slices.Values(repos))) {
		page := storage.Page{Limit: 500}
		for {
			ms, err := p.c.meta.ListManifests(ctx, repo, page)
			if err != nil {
				return fmt.Errorf("list manifests of %s: %w", repo, err)
			}
			for _, m := range ms {
				if m.Key != "" {
					p.keep(storage.Blob{Digest: m.Digest, Key: m.Key})
				}
			}
			if len(ms) < page.Limit {
				break
			}
			page.After = string(ms[len(ms)-1].Digest)
		}
		page = storage.Page{Limit: 1000}
		for {
			links, err := p.c.meta.ListBlobs(ctx, repo, page)
			if err != nil {
				return fmt.Errorf("list blobs of %s: %w", repo, err)
			}
			for _, b := range links {
				p.keep(b)
			}
			if len(links) < page.Limit {
				break
			}
			page.After = string(links[len(links)-1].Digest)
		}
	}
	return nil
}

// readRecords reads the keys the content records name, for an orphans
// phase whose step did not list them.
func (p *pass) readRecords(ctx context.Context) error {
	page := storage.Page{Limit: 1000}
	for {
		cs, err := p.c.meta.ListContents(ctx, page)
		if err != nil {
			return fmt.Errorf("list contents: %w", err)
		}
		for _, c := range cs {
			p.records[c.Key] = true
		}
		if len(cs) < page.Limit {
			return nil
		}
		page.After = string(cs[len(cs)-1].Digest)
	}
}

// retention applies the retention rules to the repositories of the
// catalog they cover (step 0), so that step 1 frees what they named. It
// reports whether it got through them all.
func (p *pass) retention(ctx context.Context, repos []string, cp *Checkpoint) (bool, error) {
	if p.c.opts.Retention == nil {
		return true, nil
	}
	rules, err := p.c.opts.Retention(ctx)
	if err != nil {
		return false, fmt.Errorf("read retention rules: %w", err)
	}
	if len(rules) == 0 {
		return true, nil
	}
	for _, repo := range slices.Sorted(slices.Values(repos)) {
		if repo <= cp.After {
			continue
		}
		if p.stopping(true) {
			return false, p.settleManifests(ctx)
		}
		if r, ok := oci.ResolveRetention(rules, repo); ok {
			p.rep.Retained++
			if err := p.retain(ctx, repo, r); err != nil {
				return false, err
			}
		}
		cp.After, p.worked = repo, true
	}
	return true, p.settleManifests(ctx)
}

// listAll reads every page of a repository listing.
func listAll(ctx context.Context, list func(context.Context, storage.Page) ([]string, error)) ([]string, error) {
	var out []string
	page := storage.Page{Limit: 1000}
	for {
		names, err := list(ctx, page)
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, names...)
		if len(names) < page.Limit {
			return out, nil
		}
		page.After = names[len(names)-1]
	}
}

// write runs the BeforeWrite hook.
func (p *pass) write(step string) error {
	if p.c.opts.BeforeWrite == nil {
		return nil
	}
	if err := p.c.opts.BeforeWrite(step); err != nil {
		return fmt.Errorf("stopped before %s: %w", step, err)
	}
	return nil
}

func (p *pass) keep(b storage.Blob) {
	p.live[b.Digest] = true
	if b.Key != "" {
		p.liveKeys[b.Key] = true
	}
}

// references returns the digests repo's manifests name, marking the
// bodies of large manifests live.
func (p *pass) references(ctx context.Context, repo string) (map[digest.Digest]bool, error) {
	refs := map[digest.Digest]bool{}
	page := storage.Page{Limit: 500}
	for {
		ms, err := p.c.meta.ListManifests(ctx, repo, page)
		if err != nil {
			return nil, fmt.Errorf("list manifests of %s: %w", repo, err)
		}
		for _, m := range ms {
			p.rep.Manifests++
			for _, d := range m.Refs {
				refs[d] = true
			}
			if m.Key != "" {
				p.keep(storage.Blob{Digest: m.Digest, Key: m.Key})
				if err := p.bodyRefs(ctx, m, refs); err != nil {
					// Unreadable: what it names is unknown, so the
					// repository keeps every link this pass.
					p.c.opts.Log.WarnContext(ctx, "garbage collection keeps every blob of a repository: a manifest body cannot be read",
						"repository", repo, "manifest", m.Digest.String(), "error", err.Error())
					return nil, errUnknownRefs
				}
			}
			if m.Subject != "" {
				refs[m.Subject] = true // a subject stored as a blob stays with its referrer
			}
		}
		if len(ms) < page.Limit {
			return refs, nil
		}
		page.After = string(ms[len(ms)-1].Digest)
	}
}

// errUnknownRefs: a manifest of the repository could not be read.
var errUnknownRefs = errors.New("a manifest's references are unknown")

// bodyRefs adds what a manifest stored as an object names (its item keeps
// no list of references).
func (p *pass) bodyRefs(ctx context.Context, m storage.Manifest, refs map[digest.Digest]bool) error {
	parsed, err := p.parseBody(ctx, m)
	if err != nil {
		return err
	}
	for _, d := range parsed.References() {
		refs[d.Digest] = true
	}
	return nil
}

// parseBody reads and parses the body of a manifest stored as an object.
func (p *pass) parseBody(ctx context.Context, m storage.Manifest) (*oci.Manifest, error) {
	rc, err := p.c.blobs.Open(ctx, m.Key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", m.Digest, err)
	}
	defer rc.Close()
	body, err := readAll(rc, oci.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", m.Digest, err)
	}
	parsed, err := oci.ParseManifest(m.MediaType, body)
	if err != nil {
		return nil, fmt.Errorf("parse stored manifest %s: %w", m.Digest, err)
	}
	return parsed, nil
}

// repository marks the unreferenced links of repo past grace.
func (p *pass) repository(ctx context.Context, repo string) error {
	p.rep.Repositories++
	refs, err := p.references(ctx, repo)
	unknown := errors.Is(err, errUnknownRefs)
	if err != nil && !unknown {
		return err
	}
	cutoff := p.t0.Add(-p.c.opts.Grace)
	var marked []storage.Blob
	page := storage.Page{Limit: 1000}
	for {
		links, err := p.c.meta.ListBlobs(ctx, repo, page)
		if err != nil {
			return fmt.Errorf("list blobs of %s: %w", repo, err)
		}
		for _, b := range links {
			p.rep.Links++
			switch {
			case unknown:
				p.keep(b)
			case refs[b.Digest] && b.Doomed != "" && !p.c.opts.DryRun:
				// Marked by a pass that stopped, and named since: unmark.
				if err := p.write("keep link " + repo + "@" + string(b.Digest)); err != nil {
					return err
				}
				if _, err := p.c.meta.RefreshBlob(ctx, repo, b.Digest, p.c.opts.Now().UTC()); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				p.keep(b)
			case refs[b.Digest]:
				p.keep(b)
			case b.Doomed != "":
				marked = append(marked, b) // marked by a pass that stopped
			case !b.Linked.Before(cutoff):
				p.keep(b)
			case p.c.opts.DryRun:
				p.rep.add(Deletion{Kind: "link", Repo: repo, Digest: b.Digest, Key: b.Key, Size: b.Size})
			default:
				if err := p.write("doom link " + repo + "@" + string(b.Digest)); err != nil {
					return err
				}
				err := p.c.meta.DoomBlob(ctx, repo, b.Digest, p.token, cutoff)
				switch {
				case err == nil:
					b.Doomed = p.token
					marked = append(marked, b)
				case errors.Is(err, storage.ErrConflict):
					p.keep(b) // refreshed since it was listed
				case !errors.Is(err, storage.ErrNotFound):
					return err
				}
			}
		}
		if len(links) < page.Limit {
			break
		}
		page.After = string(links[len(links)-1].Digest)
	}
	if len(marked) > 0 {
		p.pending = append(p.pending, doomed{repo: repo, links: marked, at: p.c.opts.Now()})
	}
	return nil
}

// settle finishes the marked links whose wait is over (all of them, after
// waiting, with wait set): two windows, so a manifest PUT that read a link
// before it was marked has stored its manifest.
func (p *pass) settle(ctx context.Context, wait bool) error {
	for len(p.pending) > 0 {
		due := p.pending[0].at.Add(2 * p.c.opts.Window)
		if d := due.Sub(p.c.opts.Now()); d > 0 {
			if !wait {
				return nil
			}
			if err := p.c.opts.Sleep(ctx, d); err != nil {
				return err
			}
		}
		if err := p.finish(ctx, p.pending[0]); err != nil {
			return err
		}
		p.pending = p.pending[1:]
	}
	return nil
}

// finish deletes the marked links of one repository that its manifests
// still do not name.
func (p *pass) finish(ctx context.Context, e doomed) error {
	refs, err := p.references(ctx, e.repo)
	unknown := errors.Is(err, errUnknownRefs)
	if err != nil && !unknown {
		return err
	}
	for _, b := range e.links {
		if refs[b.Digest] || unknown {
			if err := p.write("keep link " + e.repo + "@" + string(b.Digest)); err != nil {
				return err
			}
			_, err := p.c.meta.RefreshBlob(ctx, e.repo, b.Digest, p.c.opts.Now().UTC())
			switch {
			case err == nil:
				p.keep(b)
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
			continue
		}
		if err := p.write("delete link " + e.repo + "@" + string(b.Digest)); err != nil {
			return err
		}
		err := p.c.meta.DeleteDoomedBlob(ctx, e.repo, b.Digest, b.Doomed)
		switch {
		case err == nil:
			p.rep.add(Deletion{Kind: "link", Repo: e.repo, Digest: b.Digest, Key: b.Key, Size: b.Size})
		case errors.Is(err, storage.ErrConflict):
			p.keep(b) // a push refreshed it
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	return nil
}

// contents deletes the records (and copies) of digests nothing links,
// from cp.After on; it reports whether it got to the end.
func (p *pass) contents(ctx context.Context, cp *Checkpoint) (bool, error) {
	// A push links within one window of touching the record, and a link
	// made before the pass began is one a repository visit saw.
	cutoff := p.t0.Add(-max(p.c.opts.Grace, 2*p.c.opts.Window))
	page := storage.Page{Limit: 1000, After: cp.After}
	for {
		if p.stopping(false) {
			return false, nil
		}
		cs, err := p.c.meta.ListContents(ctx, page)
		if err != nil {
			return false, fmt.Errorf("list contents: %w", err)
		}
		for _, c := range cs {
			p.rep.Contents++
			if p.live[c.Digest] || p.liveKeys[c.Key] || !c.Linked.Before(cutoff) {
				p.records[c.Key] = true
				continue
			}
			if p.c.opts.DryRun {
				p.rep.add(Deletion{Kind: "blob", Digest: c.Digest, Key: c.Key, Size: c.Size})
				continue
			}
			if err := p.write("delete content " + string(c.Digest)); err != nil {
				return false, err
			}
			err := p.c.meta.DeleteContent(ctx, c.Digest, c.Key, cutoff)
			switch {
			case errors.Is(err, storage.ErrConflict):
				p.records[c.Key] = true // linked again
				continue
			case errors.Is(err, storage.ErrNotFound):
				continue
			case err != nil:
				return false, err
			}
			// From here the copy is an orphan: if the pass stops before
			// the delete, the next one finds it in step 3. A copy in the
			// layout from before content records stays (see orphan).
			if !legacyKey(c.Key) {
				if err := p.deleteObject(ctx, c.Key); err != nil {
					return false, err
				}
			}
			p.rep.add(Deletion{Kind: "blob", Digest: c.Digest, Key: c.Key, Size: c.Size})
		}
		if len(cs) > 0 {
			cp.After, p.worked = string(cs[len(cs)-1].Digest), true
		}
		if len(cs) < page.Limit {
			return true, nil
		}
		page.After = cp.After
	}
}

func (p *pass) deleteObject(ctx context.Context, key string) error {
	if err := p.write("delete object " + key); err != nil {
		return err
	}
	if err := p.c.blobs.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete object %s: %w", key, err)
	}
	return nil
}

// uploadedPrefix holds the objects multipart uploads assemble (registry's
// key layout).
const uploadedPrefix = "blobs/uploaded/"

// orphans deletes the objects under blobs/ nothing names, from cp.After
// on; it reports whether it got to the end.
func (p *pass) orphans(ctx context.Context, cp *Checkpoint) (bool, error) {
	cutoff := p.t0.Add(-p.c.opts.Grace)
	page := storage.Page{Limit: 1000, After: cp.After}
	for {
		if p.stopping(false) {
			return false, nil
		}
		objs, err := p.c.blobs.List(ctx, "blobs/", page)
		if err != nil {
			return false, fmt.Errorf("list objects: %w", err)
		}
		for _, o := range objs {
			p.rep.Objects++
			if p.records[o.Key] || p.liveKeys[o.Key] || !o.Modified.Before(cutoff) {
				continue
			}
			orphan, err := p.orphan(ctx, o)
			if err != nil {
				return false, err
			}
			if !orphan {
				continue
			}
			if !p.c.opts.DryRun {
				if err := p.deleteObject(ctx, o.Key); err != nil {
					return false, err
				}
			}
			p.rep.add(Deletion{Kind: "orphan", Key: o.Key, Size: o.Size})
		}
		if len(objs) > 0 {
			cp.After, p.worked = objs[len(objs)-1].Key, true
		}
		if len(objs) < page.Limit {
			return true, nil
		}
		page.After = cp.After
	}
}

// orphan decides whether object o, which no record named when listed, is
// still unnamed. Objects in the layout from before content records (no
// nonce, or a multipart key by nonce) are left alone: a repository that
// only ever had blobs then may be in no list the pass visits.
func (p *pass) orphan(ctx context.Context, o storage.Object) (bool, error) {
	if legacyKey(o.Key) {
		return false, nil
	}
	if id, ok := strings.CutPrefix(o.Key, uploadedPrefix); ok {
		u, err := p.c.meta.GetUpload(ctx, id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// A commit's session outlives it by a grace period, and a
			// session its upload TTL: one that is gone ended long ago.
			return o.Modified.Before(p.t0.Add(-p.c.opts.Grace - registry.DefaultUploadTTL)), nil
		case err != nil:
			return false, fmt.Errorf("get upload %s: %w", id, err)
		case !u.Done && p.t0.Before(u.Expires.Add(p.c.opts.Grace)):
			return false, nil // being committed, or may be resumed
		case u.Digest == "":
			return true, nil
		}
		named, err := p.named(ctx, u.Digest, o.Key)
		return !named, err
	}
	d, ok := keyDigest(o.Key)
	if !ok || legacyKey(o.Key) {
		return false, nil // not a blob key, or one from before content records
	}
	named, err := p.named(ctx, d, o.Key)
	return !named, err
}

// named reports whether d's content record names key now.
func (p *pass) named(ctx context.Context, d digest.Digest, key string) (bool, error) {
	c, err := p.c.meta.GetContent(ctx, d)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get content %s: %w", d, err)
	}
	return c.Key == key, nil
}

// legacyKey reports a key of the layout from before content records:
// blobs/<alg>/<hex>, or blobs/uploaded/<nonce>.
func legacyKey(key string) bool {
	if id, ok := strings.CutPrefix(key, uploadedPrefix); ok {
		return !strings.Contains(id, ".")
	}
	return strings.Count(key, "/") < 3
}

// keyDigest reads the digest of a blobs/<alg>/<hex>[/<nonce>] key.
func keyDigest(key string) (digest.Digest, bool) {
	parts := strings.Split(strings.TrimPrefix(key, "blobs/"), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[1])
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}

// Every runs a pass every interval until ctx is done, logging each; the
// first one interval after the start, so a restart loop never collects
// in a burst.
func (c *Collector) Every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.Run(ctx); err != nil && ctx.Err() == nil {
			c.opts.Log.ErrorContext(ctx, "garbage collection failed", "error", err.Error())
		}
	}
}
