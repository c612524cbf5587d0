// Package copier copies images between registries the way a mirror needs:
// an index with only some of its platforms (the index itself unchanged, so
// its digest and signatures hold), its referrers and cosign's digest tags,
// or every tag of a repository matching a pattern. It skips what the
// destination has, so an interrupted copy run again sends no finished blob
// twice, and it copies blobs in parallel, reporting each step as an Event.
//
// It speaks the distribution API through go-containerregistry's remote
// package (crane's library): its auth (docker config, credential helpers,
// podman's auth.json), token exchange, retries and streamed uploads are
// those of a client operators already use.
package copier

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/skiff-registry/skiff/internal/imageref"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Selection says what a copy brings along with the image named.
type Selection struct {
	// Platforms selects the children of an index to copy (nil: all). The
	// index itself is copied unchanged.
	Platforms []ocispec.Platform
	// Referrers copies the referrers of every manifest copied (signatures,
	// SBOMs, attestations), through the referrers API or its tag schema.
	Referrers bool
	// DigestTags copies cosign's tags of every manifest copied:
	// sha256-<hex>.sig, .att, .sbom (any sha256-<hex>.<suffix>).
	DigestTags bool
	// Tags, with a source repository (no tag), copies every tag whose
	// whole name matches.
	Tags *regexp.Regexp
}

// Options say what a Copier copies and how.
type Options struct {
	Selection
	// Jobs bounds the blobs copied at once (default 4).
	Jobs int
	// DirectMin is the smallest blob sent by direct upload to a registry
	// that advertises it (default DefaultDirectMin; negative: never).
	DirectMin int64
	// Insecure allows plain HTTP and unverified TLS, to both registries.
	Insecure bool
	// Keychain finds credentials (default: authn.DefaultKeychain).
	Keychain authn.Keychain
	// Transport is the HTTP transport (default: http.DefaultTransport).
	Transport http.RoundTripper
	// UserAgent names the client to registries.
	UserAgent string
	// Events receives every step, from several goroutines at once.
	Events func(Event)
}

// Event is one step of a copy.
type Event struct {
	Time  time.Time `json:"time"`
	Kind  Kind      `json:"event"`
	Image string    `json:"image"` // the source reference being copied
	// Digest, MediaType and Size describe the blob or manifest.
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	Size      int64  `json:"size,omitempty"`
	// Done counts the bytes sent so far (KindBlobProgress).
	Done  int64  `json:"done,omitempty"`
	Tag   string `json:"tag,omitempty"`
	Error string `json:"error,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Kind names an Event.
type Kind string

// The kinds of Event.
const (
	KindImage           Kind = "image"            // an image's copy starts
	KindBlobStart       Kind = "blob-start"       // a blob's upload starts
	KindBlobProgress    Kind = "blob-progress"    // bytes of it are sent
	KindBlobCopied      Kind = "blob-copied"      // it is stored
	KindBlobSkipped     Kind = "blob-skipped"     // the destination had it
	KindManifestCopied  Kind = "manifest-copied"  // a manifest was written
	KindManifestSkipped Kind = "manifest-skipped" // the destination had it
	KindTag             Kind = "tag"              // a tag was set
	KindWarning         Kind = "warning"          // something to know
	KindImageDone       Kind = "image-done"       // an image is copied
	KindImageFailed     Kind = "image-failed"     // an image's copy failed
)

// Summary counts what a run did.
type Summary struct {
	Images           int           `json:"images"`
	ManifestsCopied  int64         `json:"manifestsCopied"`
	ManifestsSkipped int64         `json:"manifestsSkipped"`
	BlobsCopied      int64         `json:"blobsCopied"`
	BlobsSkipped     int64         `json:"blobsSkipped"`
	Bytes            int64         `json:"bytes"`
	Duration         time.Duration `json:"-"`
	Seconds          float64       `json:"seconds"`
	Failures         []Failure     `json:"failures,omitempty"`
}

// Copied reports whether the run wrote anything.
func (s Summary) Copied() bool {
	return s.ManifestsCopied+s.BlobsCopied > 0
}

// Add adds o's counts to s.
func (s *Summary) Add(o Summary) {
	s.Images += o.Images
	s.ManifestsCopied += o.ManifestsCopied
	s.ManifestsSkipped += o.ManifestsSkipped
	s.BlobsCopied += o.BlobsCopied
	s.BlobsSkipped += o.BlobsSkipped
	s.Bytes += o.Bytes
	s.Duration += o.Duration
	s.Seconds = s.Duration.Seconds()
	s.Failures = append(s.Failures, o.Failures...)
}

// Failure is an image whose copy failed, and why.
type Failure struct {
	Image string `json:"image"`
	Error string `json:"error"`
}

// Copier copies images; one serves many copies, sharing connections and
// tokens.
type Copier struct {
	opts   Options
	names  []name.Option
	puller *remote.Puller
	pusher *remote.Pusher
	jobs   chan struct{}
	http   *clients
}

// RuleSelection is what mirror rule r asks a copier to bring, checked.
func RuleSelection(r mirror.Rule) (Selection, error) {
	var s Selection
	if err := r.Check(); err != nil {
		return s, err
	}
	for _, p := range r.Platforms {
		pl, err := oci.ParseKnownPlatform(p)
		if err != nil {
			return s, err
		}
		s.Platforms = append(s.Platforms, pl)
	}
	if r.Tags != "" {
		re, err := imageref.CompileTagPattern(r.Tags)
		if err != nil {
			return s, err
		}
		s.Tags = re
	}
	s.Referrers, s.DigestTags = r.Referrers, r.DigestTags
	return s, nil
}

// Select returns a Copier that copies what s says, sharing c's
// connections, tokens and bound on parallel blobs.
func (c *Copier) Select(s Selection) *Copier {
	cc := *c
	cc.opts.Selection = s
	return &cc
}

// New returns a Copier for opts.
func New(opts Options) (*Copier, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	if opts.DirectMin == 0 {
		opts.DirectMin = DefaultDirectMin
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Events == nil {
		opts.Events = func(Event) {}
	}
	var names []name.Option
	if opts.Insecure {
		names = append(names, name.Insecure)
		if t, ok := opts.Transport.(*http.Transport); ok {
			t = t.Clone()
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure asks for it
			opts.Transport = t
		}
	}
	ropts := []remote.Option{
		remote.WithAuthFromKeychain(opts.Keychain),
		remote.WithTransport(opts.Transport),
		remote.WithJobs(opts.Jobs),
	}
	if opts.UserAgent != "" {
		ropts = append(ropts, remote.WithUserAgent(opts.UserAgent))
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, err
	}
	return &Copier{opts: opts, names: names, puller: puller, pusher: pusher, jobs: make(chan struct{}, opts.Jobs),
		http: &clients{byRepo: map[string]*http.Client{}, direct: map[string]bool{}}}, nil
}

// Copy copies src to dst and reports what it did. src is an image
// (host/repo:tag or @digest) or, with Options.Tags, a repository; dst is a
// repository (the source's tag or digest is kept) or, for one image, a
// reference of its own. Each image that failed is a Failure, and the error
// names them all.
func (c *Copier) Copy(ctx context.Context, src, dst string) (Summary, error) {
	start := time.Now()
	pairs, err := c.plan(ctx, src, dst)
	if err != nil {
		return Summary{}, err
	}
	var sum Summary
	var errs []error
	for _, p := range pairs {
		s, err := c.copyImage(ctx, p.src, p.dst)
		sum.Add(s)
		if err != nil {
			sum.Failures = append(sum.Failures, Failure{Image: p.src.String(), Error: err.Error()})
			errs = append(errs, fmt.Errorf("%s: %w", p.src, err))
		}
	}
	sum.Duration = time.Since(start)
	sum.Seconds = sum.Duration.Seconds()
	return sum, errors.Join(errs...)
}

type pair struct {
	src, dst name.Reference
}

// plan turns src and dst into the images to copy.
func (c *Copier) plan(ctx context.Context, src, dst string) ([]pair, error) {
	p, err := c.parse(src, dst)
	if err != nil || c.opts.Tags == nil {
		return []pair{{p.Src, p.Dst}}, err
	}
	tags, err := c.puller.List(ctx, p.SrcRepo)
	if err != nil {
		return nil, fmt.Errorf("list the tags of %s: %w", p.SrcRepo, err)
	}
	var out []pair
	for _, t := range tags {
		if c.opts.Tags.MatchString(t) {
			out = append(out, pair{p.SrcRepo.Tag(t), p.DstRepo.Tag(t)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no tag of %s matches %s (it has %d tags)", p.SrcRepo, c.opts.Tags, len(tags))
	}
	return out, nil
}

// Preflight checks, before anything is copied, that src can be read as
// the copy would read it: its tags listed (with Tags) or its manifest
// found, with the credentials it will use.
func (c *Copier) Preflight(ctx context.Context, src, dst string) error {
	pairs, err := c.plan(ctx, src, dst)
	if err != nil || c.opts.Tags != nil {
		return err
	}
	// A GET, not a HEAD: a refusal's body says why.
	if _, err := c.puller.Get(ctx, pairs[0].src); err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	return nil
}

func (c *Copier) parse(src, dst string) (imageref.Pair, error) {
	return imageref.Parse(src, dst, c.opts.Tags != nil, c.names...)
}

// copyImage copies one image (or index) with what the options bring along.
func (c *Copier) copyImage(ctx context.Context, src, dst name.Reference) (Summary, error) {
	start := time.Now()
	t := &task{c: c, image: src.String(), src: src.Context(), dst: dst.Context(), done: map[string]*call{}}
	t.emit(Event{Kind: KindImage, Note: "to " + dst.String()})
	desc, err := c.puller.Get(ctx, src)
	if err != nil {
		t.emit(Event{Kind: KindImageFailed, Error: err.Error()})
		return t.summary(start, false), fmt.Errorf("read the source: %w", err)
	}
	if d, ok := dst.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		err := fmt.Errorf("the destination names digest %s but the source is %s", d.DigestStr(), desc.Digest)
		t.emit(Event{Kind: KindImageFailed, Error: err.Error()})
		return t.summary(start, false), err
	}
	var tag string
	if tg, ok := dst.(name.Tag); ok {
		tag = tg.TagStr()
	}
	err = t.tree(ctx, desc.Descriptor, desc.Manifest)
	if err == nil && tag != "" {
		err = t.tag(ctx, desc.Descriptor, desc.Manifest, tag)
	}
	if err == nil {
		err = t.bring(ctx)
	}
	if err != nil {
		t.emit(Event{Kind: KindImageFailed, Digest: desc.Digest.String(), Error: err.Error()})
		return t.summary(start, false), err
	}
	s := t.summary(start, true)
	note := "copied"
	if !s.Copied() {
		note = "nothing to copy: the destination has it all"
	}
	t.emit(Event{Kind: KindImageDone, Digest: desc.Digest.String(), Note: note})
	return s, nil
}

// task is the copy of one image: what it wrote, into which repository.
type task struct {
	c          *Copier
	image      string
	src, dst   name.Repository
	manifestsC atomic.Int64
	manifestsS atomic.Int64
	blobsC     atomic.Int64
	blobsS     atomic.Int64
	bytes      atomic.Int64

	mu      sync.Mutex
	done    map[string]*call // manifests and blobs handled, by kind and digest
	covered []string         // manifests handled, in order, for bring

	tagsOnce sync.Once
	tagList  []string // the source's tags, for digest tags
	tagErr   error
}

// call is one piece of work many paths may ask for (a blob two images
// share, a manifest both a referrer and a digest tag name).
type call struct {
	once sync.Once
	err  error
}

// once runs f the first time key is asked for and returns its error to
// everyone who asks.
func (t *task) once(key string, f func() error) error {
	t.mu.Lock()
	cl, ok := t.done[key]
	if !ok {
		cl = &call{}
		t.done[key] = cl
	}
	t.mu.Unlock()
	cl.once.Do(func() { cl.err = f() })
	return cl.err
}

func (t *task) emit(e Event) {
	e.Time = time.Now().UTC()
	e.Image = t.image
	t.c.opts.Events(e)
}

func (t *task) summary(start time.Time, ok bool) Summary {
	s := Summary{
		ManifestsCopied:  t.manifestsC.Load(),
		ManifestsSkipped: t.manifestsS.Load(),
		BlobsCopied:      t.blobsC.Load(),
		BlobsSkipped:     t.blobsS.Load(),
		Bytes:            t.bytes.Load(),
		Duration:         time.Since(start),
	}
	if ok {
		s.Images = 1
	}
	s.Seconds = s.Duration.Seconds()
	return s
}

// tree copies manifest d (raw its bytes) and what it names: an image's
// blobs, an index's chosen children. It records each manifest it covers
// for bring; one asked for again is done already (or being done, and
// waited for).
func (t *task) tree(ctx context.Context, d v1.Descriptor, raw []byte) error {
	return t.once("manifest "+d.Digest.String(), func() error {
		t.mu.Lock()
		t.covered = append(t.covered, d.Digest.String())
		t.mu.Unlock()
		switch {
		case d.MediaType.IsIndex():
			return t.index(ctx, d, raw)
		case d.MediaType.IsImage(), d.MediaType == "" && isImageManifest(raw):
			return t.imageManifest(ctx, d, raw)
		}
		return fmt.Errorf("manifest %s: media type %s is not an image or an index", d.Digest, d.MediaType)
	})
}

// exists reports whether the destination has manifest d.
func (t *task) exists(ctx context.Context, d v1.Descriptor) (bool, error) {
	got, err := t.c.puller.Head(ctx, t.dst.Digest(d.Digest.String()))
	if err != nil {
		if notFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("look for manifest %s in the destination: %w", d.Digest, err)
	}
	return got.Digest == d.Digest, nil
}

// imageManifest copies an image manifest: its blobs, in parallel, then itself.
func (t *task) imageManifest(ctx context.Context, d v1.Descriptor, raw []byte) error {
	m, err := v1.ParseManifest(bytesReader(raw))
	if err != nil {
		return fmt.Errorf("parse manifest %s: %w", d.Digest, err)
	}
	// Foreign layers (non-distributable) stay where they are, as crane and
	// the destination's check have it.
	blobs := []v1.Descriptor{m.Config}
	for _, l := range m.Layers {
		if l.MediaType.IsDistributable() {
			blobs = append(blobs, l)
		}
	}
	have, err := t.exists(ctx, d)
	if err != nil {
		return err
	}
	// The blobs are checked even when the manifest is there: a destination
	// may hold manifests without their blobs (a skiff repository whose
	// policy makes them optional). Each check is a HEAD.
	var g errgroup.Group
	for _, b := range blobs {
		// A failed blob does not stop the others: what is stored stays,
		// and a rerun sends only what is missing.
		g.Go(func() error { return t.blob(ctx, b) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if have {
		t.manifestsS.Add(1)
		t.emit(Event{Kind: KindManifestSkipped, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size})
		return nil
	}
	return t.put(ctx, d, raw, t.dst.Digest(d.Digest.String()))
}

// index copies an index: the chosen children, then the index unchanged.
// When children are left out the destination must take an index with
// absent children, which a strict registry refuses: the index is offered
// first, and a refusal that names any child not being copied ends the copy
// before a byte is sent, with the destination's own error.
func (t *task) index(ctx context.Context, d v1.Descriptor, raw []byte) error {
	idx, err := v1.ParseIndexManifest(bytesReader(raw))
	if err != nil {
		return fmt.Errorf("parse index %s: %w", d.Digest, err)
	}
	chosen, err := t.c.choose(idx.Manifests)
	if err != nil {
		return fmt.Errorf("index %s: %w", d.Digest, err)
	}
	for _, w := range unmatched(t.c.opts.Platforms, idx.Manifests) {
		t.emit(Event{Kind: KindWarning, Digest: d.Digest.String(), Note: "index has no child for platform " + w})
	}
	have, err := t.exists(ctx, d)
	if err != nil {
		return err
	}
	stored := have
	if !have && len(chosen) < len(idx.Manifests) {
		stored, err = t.offerPartial(ctx, d, raw, chosen)
		if err != nil {
			return err
		}
	}
	var g errgroup.Group
	for _, child := range chosen {
		g.Go(func() error {
			desc, err := t.c.puller.Get(ctx, t.src.Digest(child.Digest.String()))
			if err != nil {
				return fmt.Errorf("read child %s: %w", child.Digest, err)
			}
			return t.tree(ctx, desc.Descriptor, desc.Manifest)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if stored {
		if have {
			t.manifestsS.Add(1)
			t.emit(Event{Kind: KindManifestSkipped, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size})
		}
		return nil
	}
	return t.put(ctx, d, raw, t.dst.Digest(d.Digest.String()))
}

// offerPartial writes the index by digest before its children: true if
// the destination took it. A refusal naming only children about to be
// copied (a policy that requires those platforms) is no refusal: the index
// goes again after them.
func (t *task) offerPartial(ctx context.Context, d v1.Descriptor, raw []byte, chosen []v1.Descriptor) (bool, error) {
	err := t.put(ctx, d, raw, t.dst.Digest(d.Digest.String()))
	if err == nil {
		return true, nil
	}
	missing, ok := unknownChildren(err)
	if ok && len(missing) > 0 {
		coming := true
		for _, m := range missing {
			coming = coming && slices.ContainsFunc(chosen, func(c v1.Descriptor) bool { return c.Digest.String() == m })
		}
		if coming {
			return false, nil
		}
	}
	return false, fmt.Errorf("the destination %s refuses index %s with %d of its %d children absent (it takes no partial index there): %w",
		t.dst, d.Digest, countAbsent(raw, chosen), countChildren(raw), err)
}

// put writes manifest d to ref.
func (t *task) put(ctx context.Context, d v1.Descriptor, raw []byte, ref name.Reference) error {
	if err := t.c.pusher.Put(ctx, ref, rawManifest{raw, d.MediaType}); err != nil {
		return fmt.Errorf("write manifest %s: %w", d.Digest, err)
	}
	t.manifestsC.Add(1)
	t.emit(Event{Kind: KindManifestCopied, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size})
	return nil
}

// tag points tag at d, unless it does already.
func (t *task) tag(ctx context.Context, d v1.Descriptor, raw []byte, tag string) error {
	got, err := t.c.puller.Head(ctx, t.dst.Tag(tag))
	switch {
	case err == nil && got.Digest == d.Digest:
		return nil
	case err != nil && !notFound(err):
		return fmt.Errorf("look up tag %s in the destination: %w", tag, err)
	}
	if err := t.c.pusher.Put(ctx, t.dst.Tag(tag), rawManifest{raw, d.MediaType}); err != nil {
		return fmt.Errorf("tag %s as %s: %w", d.Digest, tag, err)
	}
	t.emit(Event{Kind: KindTag, Digest: d.Digest.String(), Tag: tag})
	return nil
}

// bring copies the referrers and digest tags of every manifest copied,
// as the options ask, and theirs in turn (a signature of an attestation):
// breadth first over the manifests covered, each once, so that no cycle a
// source's tags could form runs for ever.
func (t *task) bring(ctx context.Context) error {
	if !t.c.opts.Referrers && !t.c.opts.DigestTags {
		return nil
	}
	for i := 0; ; i++ {
		t.mu.Lock()
		if i >= len(t.covered) {
			t.mu.Unlock()
			return nil
		}
		d := t.covered[i]
		t.mu.Unlock()
		if err := t.along(ctx, d); err != nil {
			return err
		}
	}
}

// along copies the referrers and digest tags of manifest d.
func (t *task) along(ctx context.Context, d string) error {
	if t.c.opts.Referrers {
		idx, err := remote.Referrers(t.src.Digest(d), remote.Reuse(t.c.puller), remote.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("list the referrers of %s: %w", d, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return fmt.Errorf("list the referrers of %s: %w", d, err)
		}
		for _, r := range im.Manifests {
			desc, err := t.c.puller.Get(ctx, t.src.Digest(r.Digest.String()))
			if err != nil {
				return fmt.Errorf("read referrer %s of %s: %w", r.Digest, d, err)
			}
			if err := t.tree(ctx, desc.Descriptor, desc.Manifest); err != nil {
				return fmt.Errorf("referrer %s of %s: %w", r.Digest, d, err)
			}
		}
	}
	if t.c.opts.DigestTags {
		tags, err := t.sourceTags(ctx)
		if err != nil {
			return err
		}
		prefix := strings.Replace(d, ":", "-", 1) + "."
		for _, tag := range tags {
			if !strings.HasPrefix(tag, prefix) {
				continue
			}
			desc, err := t.c.puller.Get(ctx, t.src.Tag(tag))
			if err != nil {
				return fmt.Errorf("read digest tag %s: %w", tag, err)
			}
			if err := t.tree(ctx, desc.Descriptor, desc.Manifest); err != nil {
				return fmt.Errorf("digest tag %s: %w", tag, err)
			}
			if err := t.tag(ctx, desc.Descriptor, desc.Manifest, tag); err != nil {
				return err
			}
		}
	}
	return nil
}

// sourceTags lists the source repository's tags, once per image.
func (t *task) sourceTags(ctx context.Context) ([]string, error) {
	t.tagsOnce.Do(func() {
		t.tagList, t.tagErr = t.c.puller.List(ctx, t.src)
		if t.tagErr != nil {
			t.tagErr = fmt.Errorf("list the tags of %s: %w", t.src, t.tagErr)
		}
	})
	return t.tagList, t.tagErr
}

// notFound reports whether err is a registry's 404.
func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// unknownChildren returns the digests a refusal of an index names as
// unknown (MANIFEST_BLOB_UNKNOWN, its detail the digest as distribution
// has it or an object with a digest as skiff has it); false if it is
// another error or names none.
func unknownChildren(err error) ([]string, bool) {
	var terr *transport.Error
	if !errors.As(err, &terr) || len(terr.Errors) == 0 {
		return nil, false
	}
	var out []string
	for _, e := range terr.Errors {
		if e.Code != transport.ManifestBlobUnknownErrorCode {
			return nil, false
		}
		switch det := e.Detail.(type) {
		case string:
			out = append(out, det)
		case map[string]any:
			if s, ok := det["digest"].(string); ok {
				out = append(out, s)
				continue
			}
			return nil, false
		default:
			return nil, false
		}
	}
	return out, true
}
