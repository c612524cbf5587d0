package gc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Retention (step 0 of a pass, only in repositories a rule covers) deletes
// the manifests a rule expires, with the marks the registry honours:
//
//   - First look: the manifests no kept tag, kept index, kept subject or
//     rule keeps are marked (DoomManifest: doomed and expired; a manifest
//     used since it was listed is only marked expired, for a later pass),
//     and the tags the rule expires are deleted (DeleteTagIf: only if not
//     pointed again).
//   - Two link windows later, a second look: what is still unkept and
//     still marked by the same pass loses its remaining tags (digest tags)
//     and is deleted (DeleteDoomedManifest), then its referrer entry.
//
// A HEAD or GET by digest, or an index naming it, refreshes a manifest,
// which removes the doom: a client that found a manifest present may name
// it in an index for half the grace period, and an index PUT names only
// children it read within one window. The expired mark outlives a use, so
// the manifests of an expired image go in a later pass even if pulled
// meanwhile; a push of the manifest clears it.

// repoView is what a retention decision reads of one repository.
type repoView struct {
	tags      []storage.Tag
	manifests map[digest.Digest]storage.Manifest // Refs read from the body of large ones
}

// verdict is what a rule decides for one repository.
type verdict struct {
	// expired are the tags the keep-tags rules drop.
	expired []storage.Tag
	// doom are the manifests nothing keeps, in digest order, and tagsOf
	// the tags (digest tags, expired tags) that still name each.
	doom   []digest.Digest
	tagsOf map[digest.Digest][]storage.Tag
	// revive are manifests kept by a tag, an index, a subject or the
	// untagged rule (not merely young) that carry a mark.
	revive []digest.Digest
	// edges are what keeps what: an index its children, a subject its
	// referrers and digest-tag targets.
	edges map[digest.Digest][]digest.Digest
}

// tagTime is when a tag was pointed: its own time, or, for a tag from
// before tags had times, its manifest's push.
func tagTime(t storage.Tag, v repoView) time.Time {
	if !t.Updated.IsZero() {
		return t.Updated
	}
	return v.manifests[t.Digest].Created
}

// decide applies rule r to the repository v at now.
func decide(r oci.Retention, v repoView, now time.Time, grace time.Duration) verdict {
	isYoung := func(m storage.Manifest) bool { return m.Age().After(now.Add(-grace)) }

	// Tags: cosign's digest tags follow their subject; the others are
	// ranked by the keep-tags rules.
	var normal []storage.Tag
	digestTags := map[digest.Digest][]storage.Tag{} // by subject
	for _, t := range v.tags {
		if _, ok := v.manifests[t.Digest]; !ok {
			continue // names nothing stored: nothing to keep or delete
		}
		if subj, ok := oci.DigestTagSubject(t.Name); ok {
			digestTags[subj] = append(digestTags[subj], t)
			continue
		}
		normal = append(normal, t)
	}
	kept, dropped := map[string]bool{}, map[string]bool{}
	for _, k := range r.KeepTags {
		re := k.Matcher()
		var matched []storage.Tag
		for _, t := range normal {
			if re.MatchString(t.Name) {
				matched = append(matched, t)
			}
		}
		slices.SortFunc(matched, func(a, b storage.Tag) int {
			return cmp.Or(tagTime(b, v).Compare(tagTime(a, v)), cmp.Compare(a.Name, b.Name))
		})
		for i, t := range matched {
			if i < k.Last {
				kept[t.Name] = true
			} else {
				dropped[t.Name] = true
			}
		}
	}
	var vd verdict
	hasTag, anyTag := map[digest.Digest]bool{}, map[digest.Digest]bool{}
	for _, t := range normal {
		anyTag[t.Digest] = true
		if dropped[t.Name] && !kept[t.Name] && tagTime(t, v).Before(now.Add(-grace)) {
			vd.expired = append(vd.expired, t)
			continue
		}
		hasTag[t.Digest] = true
	}

	// Roots, then everything they name: children, referrers, digest tags.
	referrers := map[digest.Digest][]digest.Digest{}
	isDigestTarget := map[digest.Digest]bool{}
	for _, ts := range digestTags {
		for _, t := range ts {
			isDigestTarget[t.Digest] = true
		}
	}
	named := map[digest.Digest]bool{} // children of some index
	for _, m := range v.manifests {
		for _, ref := range m.Refs {
			named[ref] = true
		}
	}
	vd.edges = map[digest.Digest][]digest.Digest{}
	for d, m := range v.manifests {
		if m.Subject != "" {
			referrers[m.Subject] = append(referrers[m.Subject], d)
		}
	}
	for d, m := range v.manifests {
		var next []digest.Digest
		for _, n := range slices.Concat(m.Refs, referrers[d]) {
			if _, ok := v.manifests[n]; ok {
				next = append(next, n)
			}
		}
		for _, t := range digestTags[d] {
			next = append(next, t.Digest)
		}
		slices.Sort(next)
		vd.edges[d] = slices.Compact(next)
	}
	// Roots: what a tag or the untagged rule keeps (strong), and what is
	// young. Only the strong ones lose a mark: a use within grace keeps a
	// manifest this pass, and the expired mark is for a later one.
	var strong, young []digest.Digest
	for d, m := range v.manifests {
		untagged := !anyTag[d] && !named[d] && m.Subject == "" && !isDigestTarget[d] && !m.Expired && m.Doomed == "" &&
			// Untagged, and nothing else's part: kept unless the rule
			// ages it out. A child, a referrer, a signature follow what
			// names them.
			(r.UntaggedAfter == 0 || !m.Age().Before(now.Add(-time.Duration(r.UntaggedAfter))))
		switch {
		case hasTag[d] || untagged:
			strong = append(strong, d)
		case isYoung(m):
			young = append(young, d)
		}
	}
	keepStrong := closure(vd.edges, strong)
	keep := closure(vd.edges, append(strong, young...))

	vd.tagsOf = map[digest.Digest][]storage.Tag{}
	for d, m := range v.manifests {
		switch {
		case !keep[d]:
			vd.doom = append(vd.doom, d)
		case keepStrong[d] && (m.Doomed != "" || m.Expired):
			vd.revive = append(vd.revive, d)
		}
	}
	for _, t := range v.tags {
		if _, ok := v.manifests[t.Digest]; ok && !keep[t.Digest] {
			vd.tagsOf[t.Digest] = append(vd.tagsOf[t.Digest], t)
		}
	}
	slices.Sort(vd.doom)
	slices.Sort(vd.revive)
	return vd
}

// closure returns what roots keep, through edges.
func closure(edges map[digest.Digest][]digest.Digest, roots []digest.Digest) map[digest.Digest]bool {
	keep := map[digest.Digest]bool{}
	queue := slices.Clone(roots)
	for _, d := range roots {
		keep[d] = true
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, n := range edges[d] {
			if !keep[n] {
				keep[n] = true
				queue = append(queue, n)
			}
		}
	}
	return keep
}

// markedManifests are the manifests a pass marked in one repository (by
// token: its own, or that of a pass that stopped), and when.
type markedManifests struct {
	repo   string
	rule   oci.Retention
	tokens map[digest.Digest]string
	at     time.Time
}

// view reads a repository's tags and manifests, with the references of
// large manifests from their bodies.
func (p *pass) view(ctx context.Context, repo string) (repoView, error) {
	v := repoView{manifests: map[digest.Digest]storage.Manifest{}}
	page := storage.Page{Limit: 1000}
	for {
		tags, err := p.c.meta.ListTags(ctx, repo, page)
		if err != nil {
			return v, fmt.Errorf("list tags of %s: %w", repo, err)
		}
		v.tags = append(v.tags, tags...)
		if len(tags) < page.Limit {
			break
		}
		page.After = tags[len(tags)-1].Name
	}
	page = storage.Page{Limit: 500}
	for {
		ms, err := p.c.meta.ListManifests(ctx, repo, page)
		if err != nil {
			return v, fmt.Errorf("list manifests of %s: %w", repo, err)
		}
		for _, m := range ms {
			if m.Key != "" {
				refs := map[digest.Digest]bool{}
				if err := p.bodyRefs(ctx, m, refs); err != nil {
					return v, fmt.Errorf("%w: %w", errUnknownRefs, err)
				}
				m.Refs = slices.Sorted(func(yield func(digest.Digest) bool) {
					for d := range refs {
						if !yield(d) {
							return
						}
					}
				})
			}
			v.manifests[m.Digest] = m
		}
		if len(ms) < page.Limit {
			return v, nil
		}
		page.After = string(ms[len(ms)-1].Digest)
	}
}

// retain takes the first look at a repository rule r covers.
func (p *pass) retain(ctx context.Context, repo string, r oci.Retention) error {
	v, err := p.view(ctx, repo)
	if errors.Is(err, errUnknownRefs) {
		p.c.opts.Log.WarnContext(ctx, "retention skips a repository: a manifest body cannot be read", "repository", repo, "error", err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	now := p.c.opts.Now().UTC()
	vd := decide(r, v, now, p.c.opts.Grace)
	if p.c.opts.DryRun {
		for _, t := range vd.expired {
			p.rep.add(Deletion{Kind: "tag", Repo: repo, Digest: t.Digest, Tag: t.Name})
		}
		for _, d := range vd.doom {
			p.rep.add(Deletion{Kind: "manifest", Repo: repo, Digest: d, Size: v.manifests[d].Size})
		}
		return nil
	}
	for _, d := range vd.revive {
		if err := p.write("revive manifest " + repo + "@" + string(d)); err != nil {
			return err
		}
		if err := p.c.meta.ReviveManifest(ctx, repo, d); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if v.manifests[d].Subject != "" {
			// A pass that stopped between deleting its entry and failing
			// to delete it may have left it out of the referrers API.
			if err := p.restoreReferrer(ctx, repo, d); err != nil {
				return err
			}
		}
	}
	mm := markedManifests{repo: repo, rule: r, tokens: map[digest.Digest]string{}}
	for _, d := range vd.doom {
		if tok := v.manifests[d].Doomed; tok != "" {
			mm.tokens[d] = tok // marked by a pass that stopped
			continue
		}
		if err := p.write("doom manifest " + repo + "@" + string(d)); err != nil {
			return err
		}
		err := p.c.meta.DoomManifest(ctx, repo, d, p.token, now.Add(-p.c.opts.Grace))
		switch {
		case err == nil:
			mm.tokens[d] = p.token
		case errors.Is(err, storage.ErrConflict):
			// Used since it was listed: it stays this pass, and goes in a
			// later one unless something keeps it by then.
			if err := p.write("expire manifest " + repo + "@" + string(d)); err != nil {
				return err
			}
			err := p.c.meta.ExpireManifest(ctx, repo, d, v.manifests[d].Created)
			if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
				return err // ErrConflict: pushed again since, which clears the mark
			}
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	// The tags go after their manifests are marked: a pass that stops in
	// between leaves marked manifests, which the next one takes.
	for _, t := range vd.expired {
		if err := p.deleteTag(ctx, repo, t); err != nil {
			return err
		}
	}
	if len(mm.tokens) > 0 {
		mm.at = p.c.opts.Now()
		p.manifests = append(p.manifests, mm)
	}
	return nil
}

// deleteTag deletes t if it still names what it named when listed.
func (p *pass) deleteTag(ctx context.Context, repo string, t storage.Tag) error {
	if err := p.write("delete tag " + repo + ":" + t.Name); err != nil {
		return err
	}
	err := p.c.meta.DeleteTagIf(ctx, repo, t)
	switch {
	case err == nil:
		p.rep.add(Deletion{Kind: "tag", Repo: repo, Digest: t.Digest, Tag: t.Name})
	case !errors.Is(err, storage.ErrConflict) && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	return nil
}

// settleManifests takes the second look at every repository where the
// pass marked manifests, two windows after it marked them.
func (p *pass) settleManifests(ctx context.Context) error {
	for _, mm := range p.manifests {
		if d := mm.at.Add(2 * p.c.opts.Window).Sub(p.c.opts.Now()); d > 0 {
			if err := p.c.opts.Sleep(ctx, d); err != nil {
				return err
			}
		}
		if err := p.finishManifests(ctx, mm); err != nil {
			return err
		}
	}
	p.manifests = nil
	return nil
}

// finishManifests deletes the marked manifests of one repository that
// nothing keeps now and that no use has unmarked.
func (p *pass) finishManifests(ctx context.Context, mm markedManifests) error {
	v, err := p.view(ctx, mm.repo)
	if errors.Is(err, errUnknownRefs) {
		return nil // the marks stay; a use or a later pass settles them
	}
	if err != nil {
		return err
	}
	vd := decide(mm.rule, v, p.c.opts.Now().UTC(), p.c.opts.Grace)
	// What names goes before what it names (an index before its children,
	// a subject before its referrers and signatures): a use of the one
	// that unmarks it, or a pass that stops between the two, never leaves
	// a kept manifest without what it names. What a manifest that stays
	// names stays too.
	doomed := map[digest.Digest]bool{}
	for _, d := range vd.doom {
		doomed[d] = true
	}
	parents := map[digest.Digest]int{}
	for _, d := range vd.doom {
		for _, n := range vd.edges[d] {
			if doomed[n] {
				parents[n]++
			}
		}
	}
	spared := map[digest.Digest]bool{}
	var ready []digest.Digest
	for _, d := range vd.doom {
		if parents[d] == 0 {
			ready = append(ready, d)
		}
	}
	for len(ready) > 0 {
		d := ready[0]
		ready = ready[1:]
		if !spared[d] {
			deleted, err := p.finishManifest(ctx, mm, v.manifests[d], vd.tagsOf[d])
			if err != nil {
				return err
			}
			if !deleted {
				for n := range closure(vd.edges, []digest.Digest{d}) {
					spared[n] = true
				}
			}
		}
		for _, n := range vd.edges[d] {
			if doomed[n] {
				if parents[n]--; parents[n] == 0 {
					ready = append(ready, n)
				}
			}
		}
	}
	return nil
}

// finishManifest deletes m, with the tags left naming it, if this pass
// marked it and it is still marked; it reports whether m is gone.
func (p *pass) finishManifest(ctx context.Context, mm markedManifests, m storage.Manifest, tags []storage.Tag) (bool, error) {
	tok, ok := mm.tokens[m.Digest]
	if !ok || m.Doomed != tok {
		return false, nil // not marked by this pass, or used since
	}
	for _, t := range tags {
		if err := p.deleteTag(ctx, mm.repo, t); err != nil {
			return false, err
		}
		_, err := p.c.meta.GetTag(ctx, mm.repo, t.Name)
		switch {
		case err == nil:
			return false, nil // pointed again meanwhile
		case !errors.Is(err, storage.ErrNotFound):
			return false, fmt.Errorf("get tag %s:%s: %w", mm.repo, t.Name, err)
		}
	}
	return p.deleteManifest(ctx, mm.repo, m, tok)
}

// deleteManifest deletes m if tok still marks it, and reports whether m
// is gone. A referrer's entry goes first, so the referrers API never
// lists a deleted manifest, and comes back if the manifest stays (a use or
// a push unmarked it; a push after the delete writes its own entry after
// its manifest).
func (p *pass) deleteManifest(ctx context.Context, repo string, m storage.Manifest, tok string) (bool, error) {
	if m.Subject != "" {
		if err := p.write("delete referrer " + repo + "@" + string(m.Digest)); err != nil {
			return false, err
		}
		if err := p.c.meta.DeleteReferrer(ctx, repo, m.Subject, m.Digest); err != nil {
			return false, fmt.Errorf("delete referrer %s of %s: %w", m.Digest, m.Subject, err)
		}
	}
	if err := p.write("delete manifest " + repo + "@" + string(m.Digest)); err != nil {
		return false, err
	}
	err := p.c.meta.DeleteDoomedManifest(ctx, repo, m.Digest, tok)
	switch {
	case err == nil:
		p.rep.add(Deletion{Kind: "manifest", Repo: repo, Digest: m.Digest, Size: m.Size})
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return true, nil
	case !errors.Is(err, storage.ErrConflict):
		return false, err
	}
	if m.Subject == "" {
		return false, nil
	}
	return false, p.restoreReferrer(ctx, repo, m.Digest)
}

// restoreReferrer writes the referrer entry of the manifest d if it is
// there (idempotent).
func (p *pass) restoreReferrer(ctx context.Context, repo string, d digest.Digest) error {
	m, err := p.c.meta.GetManifest(ctx, repo, d)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("get manifest %s in %s: %w", d, repo, err)
	case m.Subject == "":
		return nil
	}
	annotations := m.Annotations
	if m.Key != "" {
		// A large manifest's item keeps no annotations: its body has them.
		parsed, err := p.parseBody(ctx, m)
		if err != nil {
			return err
		}
		annotations = parsed.Annotations
	}
	if err := p.write("restore referrer " + repo + "@" + string(d)); err != nil {
		return err
	}
	ent := storage.Referrer{Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, ArtifactType: m.ArtifactType, Annotations: annotations}
	if err := p.c.meta.PutReferrer(ctx, repo, m.Subject, ent); err != nil {
		return fmt.Errorf("restore referrer %s of %s: %w", m.Digest, m.Subject, err)
	}
	return nil
}
