package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// PutResult is what a stored manifest answers with.
type PutResult struct {
	Digest  digest.Digest
	Subject digest.Digest // set when the manifest has a subject (OCI-Subject)
	Tags    []string      // the tags now pointing at it (OCI-Tag)
}

// PutManifest validates body and stores it in repo under ref (a tag or
// the body's digest), plus any extra tags.
//
// Write order, so that every crash point leaves a valid state: the
// references are checked, a large body is written to its content key, the
// repository is recorded, then the manifest item, then its referrer entry,
// then the tags. A client never sees a tag before its manifest, nor a
// manifest before its blobs.
func (r *Registry) PutManifest(ctx context.Context, repo string, ref oci.Reference, contentType string, body []byte, tags []string) (PutResult, error) {
	var res PutResult
	m, err := oci.ParseManifest(contentType, body)
	if err != nil {
		return res, err
	}
	res.Digest = digest.SHA256.FromBytes(body)
	if ref.IsDigest() {
		res.Digest = ref.Digest.Algorithm().FromBytes(body)
		if res.Digest != ref.Digest {
			return res, oci.Errorf(oci.CodeDigestInvalid, "the manifest body hashes to %s, not %s", res.Digest, ref.Digest)
		}
	} else {
		tags = append([]string{ref.Tag}, tags...)
	}
	for _, t := range tags {
		if err := oci.ValidateTag(t); err != nil {
			return res, err
		}
	}
	if m.Subject != nil {
		if n := annotationsSize(m.Annotations); n > maxReferrerAnnotations {
			return res, oci.Errorf(oci.CodeManifestInvalid,
				"the manifest has a subject and %d bytes of annotations; the limit is %d, since the referrers API lists them with it", n, maxReferrerAnnotations)
		}
	}
	absent, since, err := r.checkReferences(ctx, repo, m)
	if err != nil {
		return res, err
	}
	rec := storage.Manifest{
		Digest:       res.Digest,
		MediaType:    m.MediaType,
		Size:         int64(len(body)),
		ArtifactType: m.ArtifactType,
		Annotations:  m.Annotations,
		Refs:         descriptorDigests(m.References()),
		Created:      r.opts.now().UTC(),
	}
	if m.Subject != nil {
		rec.Subject = m.Subject.Digest
		res.Subject = m.Subject.Digest
	}
	if len(body) <= r.opts.inlineManifestMax {
		rec.Body = body
	} else {
		// The item must stay small (DynamoDB caps items at 400 KB):
		// what a large body says is read from the body itself.
		rec.Refs, rec.Annotations = nil, nil
		key := ownKey(res.Digest, newID()[:16])
		if err := r.blobs.Put(ctx, key, rec.Size, res.Digest, bytes.NewReader(body)); err != nil {
			return res, fmt.Errorf("store manifest body %s: %w", res.Digest, err)
		}
		// The body's window opens after the references' (since), so
		// keeping since's covers both.
		c, _, err := r.adopt(ctx, res.Digest, rec.Size, key)
		if err != nil {
			return res, err
		}
		rec.Key = c.Key
	}
	if err := r.recordRepository(ctx, repo); err != nil {
		return res, err
	}
	// The window that opened when the references were read: a manifest
	// stored later could name blobs a collection has just deleted. A slow
	// push (a large body, a slow store) gets a second window, after a
	// second look at the references (and the body's record).
	for attempt := 0; ; attempt++ {
		err := r.putManifestWithin(ctx, repo, rec, since)
		if err == nil {
			break
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || attempt == 1 {
			return res, err
		}
		if absent, since, err = r.checkReferences(ctx, repo, m); err != nil {
			return res, err
		}
		if rec.Key != "" {
			if _, err := r.meta.TouchContent(ctx, res.Digest, since); err != nil {
				return res, fmt.Errorf("touch manifest body %s: %w", res.Digest, err)
			}
		}
	}
	// Absent children are recorded after the index, so a GET of one can
	// say which platform of which index it is.
	for _, c := range absent {
		if err := r.meta.PutAbsent(ctx, repo, c.Digest, storage.Absent{Index: res.Digest, Platform: oci.PlatformString(c.Platform)}); err != nil {
			return res, fmt.Errorf("record absent child %s of %s: %w", c.Digest, res.Digest, err)
		}
	}
	if m.Subject != nil {
		ent := storage.Referrer{Digest: res.Digest, MediaType: m.MediaType, Size: rec.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if err := r.meta.PutReferrer(ctx, repo, m.Subject.Digest, ent); err != nil {
			return res, fmt.Errorf("record referrer %s of %s: %w", res.Digest, m.Subject.Digest, err)
		}
	}
	for _, t := range slices.Compact(slices.Sorted(slices.Values(tags))) {
		if err := r.meta.PutTag(ctx, repo, storage.Tag{Name: t, Digest: res.Digest, Updated: r.opts.now().UTC()}); err != nil {
			return res, fmt.Errorf("tag %s:%s: %w", repo, t, err)
		}
		res.Tags = append(res.Tags, t)
	}
	return res, nil
}

// putManifestWithin stores rec unless the link window that opened at since
// closes first.
func (r *Registry) putManifestWithin(ctx context.Context, repo string, rec storage.Manifest, since time.Time) error {
	wctx, cancel := context.WithDeadline(ctx, since.Add(r.opts.linkWindow))
	defer cancel()
	if err := r.meta.PutManifest(wctx, repo, rec); err != nil {
		return fmt.Errorf("store manifest %s in %s: %w", rec.Digest, repo, err)
	}
	return nil
}

// maxReferrerAnnotations caps the annotations of a manifest with a
// subject: its referrer entry carries them (the referrers API lists them),
// and that entry is one metadata item (DynamoDB: 400 KB at most).
const maxReferrerAnnotations = 64 << 10

func annotationsSize(a map[string]string) int {
	n := 0
	for k, v := range a {
		n += len(k) + len(v)
	}
	return n
}

// maxReferenceErrors caps the errors a refused manifest is answered with:
// the first ones, then one that says how many more there were. Once that
// many are found the rest are not looked up, so neither the answer nor
// the work grows with the manifest.
const maxReferenceErrors = 100

// lookupBatch is how many digests one lookup asks for: the store's batch
// read size (DynamoDB BatchGetItem takes 100 keys).
const lookupBatch = 100

// checkReferences refuses a manifest naming content repo lacks, unless
// repo's index policy lets it be absent, with one MANIFEST_BLOB_UNKNOWN per
// missing reference naming the digest, the platform and the policy, and a
// MANIFEST_INVALID for a reference whose descriptor gives another size
// than the stored blob's or manifest's. References are looked up in
// batches of lookupBatch, and the policy is read only when something is
// missing: a complete push never pays for it. The subject may always be
// absent (the spec requires accepting it) and non-distributable layers may
// be too. It returns the index children accepted as absent.
func (r *Registry) checkReferences(ctx context.Context, repo string, m *oci.Manifest) ([]v1.Descriptor, time.Time, error) {
	since := r.opts.now().UTC()
	absent, err := r.checkRefs(ctx, repo, m)
	return absent, since, err
}

func (r *Registry) checkRefs(ctx context.Context, repo string, m *oci.Manifest) ([]v1.Descriptor, error) {
	var blobs []v1.Descriptor
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, l := range m.Layers {
		if !oci.IsNonDistributable(l.MediaType) {
			blobs = append(blobs, l)
		}
	}
	c := &refCheck{r: r, repo: repo}
	if err := c.check(ctx, blobs, false); err != nil {
		return nil, err
	}
	if err := c.check(ctx, m.Manifests, true); err != nil {
		return nil, err
	}
	if len(c.errs) == 0 {
		return c.absent, nil
	}
	errs := c.errs
	if extra := len(errs) - maxReferenceErrors; extra > 0 || c.unchecked > 0 {
		last := errs[min(len(errs), maxReferenceErrors)-1]
		errs = errs[:min(len(errs), maxReferenceErrors)]
		msg := fmt.Sprintf("the first %d problems with the manifest's references are listed", len(errs))
		if extra > 0 {
			msg += fmt.Sprintf("; %d more were found", extra)
		}
		if c.unchecked > 0 {
			msg += fmt.Sprintf("; %d more references were not checked", c.unchecked)
		}
		errs = append(errs, oci.Errorf(last.Code, "%s", msg).WithDetail(map[string]any{"more": extra, "unchecked": c.unchecked}))
	}
	return nil, errs
}

// refCheck is one manifest's reference check.
type refCheck struct {
	r         *Registry
	repo      string
	pol       *oci.Policy // read when something is first missing
	errs      oci.Errors
	absent    []v1.Descriptor
	unchecked int // references not looked up once enough errors were found
}

func (c *refCheck) policy(ctx context.Context) (oci.Policy, error) {
	if c.pol == nil {
		p, err := c.r.opts.policies.PolicyFor(ctx, c.repo)
		if err != nil {
			return p, fmt.Errorf("read index policy of %s: %w", c.repo, err)
		}
		c.pol = &p
	}
	return *c.pol, nil
}

// check looks up descs (blobs, or with children an index's manifests) in
// batches and records what is wrong with them.
func (c *refCheck) check(ctx context.Context, descs []v1.Descriptor, children bool) error {
	for i := 0; i < len(descs); i += lookupBatch {
		if len(c.errs) >= maxReferenceErrors {
			c.unchecked += len(descs) - i
			return nil
		}
		batch := descs[i:min(i+lookupBatch, len(descs))]
		sizes, err := c.lookup(ctx, batch, children)
		if err != nil {
			return err
		}
		for _, d := range batch {
			size, ok := sizes[d.Digest]
			if ok {
				if size != d.Size {
					what := "blob"
					if children {
						what = "manifest"
					}
					c.errs = append(c.errs, oci.Errorf(oci.CodeManifestInvalid, "descriptor of %s %s says %d bytes but the %s in repository %s has %d", what, d.Digest, d.Size, what, c.repo, size).
						WithDetail(map[string]any{"digest": d.Digest, "size": d.Size, "stored": size}))
				}
				continue
			}
			pol, err := c.policy(ctx)
			if err != nil {
				return err
			}
			switch {
			case !children && pol.ImageBlobs == oci.ImageBlobsOptional:
			case !children:
				c.errs = append(c.errs, oci.Errorf(oci.CodeManifestBlobUnknown, "blob %s (%s) is not in repository %s (%s)", d.Digest, d.MediaType, c.repo, policyNote(pol)).
					WithDetail(map[string]any{"digest": d.Digest, "policy": pol}))
			case !pol.RequiresChild(d.Platform):
				c.absent = append(c.absent, d)
			default:
				platform := oci.PlatformString(d.Platform)
				what := "manifest " + d.Digest.String()
				if platform != "" {
					what += " for platform " + platform
				}
				c.errs = append(c.errs, oci.Errorf(oci.CodeManifestBlobUnknown, "%s is not in repository %s (%s)", what, c.repo, policyNote(pol)).
					WithDetail(map[string]any{"digest": d.Digest, "platform": platform, "policy": pol}))
			}
		}
	}
	return nil
}

// lookup returns the stored sizes of those of descs repo holds.
func (c *refCheck) lookup(ctx context.Context, descs []v1.Descriptor, children bool) (map[digest.Digest]int64, error) {
	ds := descriptorDigests(descs)
	sizes := make(map[digest.Digest]int64, len(ds))
	if children {
		found, err := c.r.meta.GetManifests(ctx, c.repo, ds)
		if err != nil {
			return nil, fmt.Errorf("look up manifests of index: %w", err)
		}
		for d, m := range found {
			if m.Doomed != "" {
				// A retention rule marked it: a use undoes the mark,
				// unless the collection deleted it first.
				_, err := c.r.meta.RefreshManifest(ctx, c.repo, d, c.r.opts.now().UTC())
				if errors.Is(err, storage.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("refresh manifest %s of index: %w", d, err)
				}
			}
			sizes[d] = m.Size
		}
		return sizes, nil
	}
	found, err := c.r.meta.GetBlobs(ctx, c.repo, ds)
	if err != nil {
		return nil, fmt.Errorf("look up blobs of manifest: %w", err)
	}
	for d, b := range found {
		if b.Doomed != "" {
			// A collection marked it: refreshing undoes the mark, unless
			// the collection deleted it first.
			_, err := c.r.meta.RefreshBlob(ctx, c.repo, d, c.r.opts.now().UTC())
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("refresh blob %s of manifest: %w", d, err)
			}
		}
		sizes[d] = b.Size
	}
	return sizes, nil
}

// policyNote says which policy applied, for error messages.
func policyNote(p oci.Policy) string {
	if p.Prefix == "" {
		return "default index policy: " + p.String()
	}
	return fmt.Sprintf("index policy of %s/: %s", p.Prefix, p)
}

// descriptorDigests returns the distinct digests of ds, in order.
func descriptorDigests(ds []v1.Descriptor) []digest.Digest {
	out := make([]digest.Digest, 0, len(ds))
	seen := make(map[digest.Digest]bool, len(ds))
	for _, d := range ds {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d.Digest)
		}
	}
	return out
}

// ResolveManifest returns the stored manifest ref names in repo.
func (r *Registry) ResolveManifest(ctx context.Context, repo string, ref oci.Reference) (storage.Manifest, error) {
	d := ref.Digest
	if !ref.IsDigest() {
		t, err := r.meta.GetTag(ctx, repo, ref.Tag)
		if errors.Is(err, storage.ErrNotFound) {
			return storage.Manifest{}, oci.Errorf(oci.CodeManifestUnknown, "tag %s is not in repository %s", ref.Tag, repo)
		}
		if err != nil {
			return storage.Manifest{}, fmt.Errorf("resolve tag %s:%s: %w", repo, ref.Tag, err)
		}
		d = t.Digest
	}
	m, err := r.meta.GetManifest(ctx, repo, d)
	if errors.Is(err, storage.ErrNotFound) {
		return m, r.unknownManifest(ctx, repo, d)
	}
	if err != nil {
		return m, fmt.Errorf("get manifest %s in %s: %w", d, repo, err)
	}
	return m, nil
}

// ManifestBody returns the bytes of m.
func (r *Registry) ManifestBody(ctx context.Context, m storage.Manifest) (io.ReadCloser, error) {
	if m.Key == "" {
		return io.NopCloser(bytes.NewReader(m.Body)), nil
	}
	rc, err := r.blobs.Open(ctx, m.Key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("open manifest body %s: %w", m.Digest, err)
	}
	return rc, nil
}

// DeleteManifest deletes a tag (ref is a tag) or a manifest with the tags
// that point at it and its referrer entry (ref is a digest). Tags go
// first, so a crash never leaves a tag naming a deleted manifest.
func (r *Registry) DeleteManifest(ctx context.Context, repo string, ref oci.Reference) error {
	if !ref.IsDigest() {
		err := r.meta.DeleteTag(ctx, repo, ref.Tag)
		if errors.Is(err, storage.ErrNotFound) {
			return oci.Errorf(oci.CodeManifestUnknown, "tag %s is not in repository %s", ref.Tag, repo)
		}
		if err != nil {
			return fmt.Errorf("delete tag %s:%s: %w", repo, ref.Tag, err)
		}
		return nil
	}
	m, err := r.ResolveManifest(ctx, repo, ref)
	if err != nil {
		return err
	}
	if err := r.untag(ctx, repo, m.Digest); err != nil {
		return err
	}
	if m.Subject != "" {
		if err := r.meta.DeleteReferrer(ctx, repo, m.Subject, m.Digest); err != nil {
			return fmt.Errorf("delete referrer %s of %s: %w", m.Digest, m.Subject, err)
		}
	}
	err = r.meta.DeleteManifest(ctx, repo, m.Digest)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete manifest %s in %s: %w", m.Digest, repo, err)
	}
	return nil
}

// untag removes every tag of repo pointing at d.
func (r *Registry) untag(ctx context.Context, repo string, d digest.Digest) error {
	p := storage.Page{Limit: 1000}
	for {
		tags, err := r.meta.ListTags(ctx, repo, p)
		if err != nil {
			return fmt.Errorf("list tags of %s: %w", repo, err)
		}
		for _, t := range tags {
			if t.Digest != d {
				continue
			}
			if err := r.meta.DeleteTag(ctx, repo, t.Name); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("delete tag %s:%s: %w", repo, t.Name, err)
			}
		}
		if len(tags) < p.Limit {
			return nil
		}
		p.After = tags[len(tags)-1].Name
	}
}

// unknownManifest explains a missing manifest; when it is the absent
// platform of a sparse index, it says so, naming the platform.
func (r *Registry) unknownManifest(ctx context.Context, repo string, d digest.Digest) error {
	plain := oci.Errorf(oci.CodeManifestUnknown, "manifest %s is not in repository %s", d, repo)
	recs, err := r.meta.ListAbsent(ctx, repo, d, storage.Page{Limit: 10})
	if err != nil || len(recs) == 0 {
		return plain
	}
	idx := make([]digest.Digest, len(recs))
	for i, a := range recs {
		idx[i] = a.Index
	}
	live, err := r.meta.GetManifests(ctx, repo, idx)
	if err != nil {
		return plain
	}
	for _, a := range recs {
		if _, ok := live[a.Index]; !ok {
			continue // the index was deleted since
		}
		platform := a.Platform
		if platform == "" {
			platform = "without a platform"
		}
		return oci.Errorf(oci.CodeManifestUnknown,
			"manifest %s (platform %s) is not in repository %s: it is a partial mirror, and index %s names this platform without holding it",
			d, platform, repo, a.Index).WithDetail(map[string]any{"digest": d, "platform": a.Platform, "index": a.Index, "partialMirror": true})
	}
	return plain
}

// ChildStatus is one child of an index and whether repo holds it.
type ChildStatus struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Platform  string        `json:"platform,omitempty"`
	Present   bool          `json:"present"`
}

// IndexStatus reports which children of the index ref names are present
// in repo and which are absent.
func (r *Registry) IndexStatus(ctx context.Context, repo string, ref oci.Reference) (storage.Manifest, []ChildStatus, error) {
	m, err := r.ResolveManifest(ctx, repo, ref)
	if err != nil {
		return m, nil, err
	}
	if !oci.IsIndexMediaType(m.MediaType) {
		return m, nil, oci.Errorf(oci.CodeManifestInvalid, "%s in %s is a %s, not an image index", m.Digest, repo, m.MediaType)
	}
	rc, err := r.ManifestBody(ctx, m)
	if err != nil {
		return m, nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, oci.MaxManifestSize+1))
	if err != nil {
		return m, nil, fmt.Errorf("read index %s: %w", m.Digest, err)
	}
	idx, err := oci.ParseManifest(m.MediaType, body)
	if err != nil {
		return m, nil, fmt.Errorf("parse stored index %s: %w", m.Digest, err)
	}
	found, err := r.meta.GetManifests(ctx, repo, descriptorDigests(idx.Manifests))
	if err != nil {
		return m, nil, fmt.Errorf("look up children of %s: %w", m.Digest, err)
	}
	out := make([]ChildStatus, len(idx.Manifests))
	for i, c := range idx.Manifests {
		_, ok := found[c.Digest]
		out[i] = ChildStatus{Digest: c.Digest, MediaType: c.MediaType, Platform: oci.PlatformString(c.Platform), Present: ok}
	}
	return m, out, nil
}
