// Package registry holds Skiff's use cases (push, pull, tag, delete,
// referrers, the blob upload protocol) over the storage ports. It knows the
// distribution-spec's rules but nothing of HTTP; internal/httpapi maps
// requests onto it. Client-caused failures are returned as *oci.Error (or
// oci.Errors); anything else is an internal error.
package registry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Registry serves the distribution API's operations over a blob store and
// a metadata store.
type Registry struct {
	blobs storage.BlobStore
	meta  storage.MetaStore
	opts  options
	bufs  sync.Pool
	// instance prefixes this process's upload claims.
	instance string
	// uploadKey signs upload session ids.
	uploadKey []byte
	// repos are the repositories this process has recorded in the
	// catalog; linked those it has recorded as having links.
	repos, linked knownRepos
	// refreshed are links this process refreshed on a HEAD.
	refreshed refreshes
	// directOnce asks once whether the store presigns parts (directOK).
	directOnce sync.Once
	directOK   bool
}

type options struct {
	log               *slog.Logger
	speculativeMax    int64
	partSize          int64
	minPartSize       int64
	maxSegments       int
	inlineManifestMax int
	maxSinglePut      int64
	uploadTTL         time.Duration
	claimLease        time.Duration
	directStep        time.Duration
	directPart        int64
	exclusive         bool
	uploadKey         []byte
	policies          PolicySource
	now               func() time.Time
	linkWindow        time.Duration
	grace             time.Duration
}

// PolicySource gives the index policy of a repository (internal/policy's
// Cache in the server).
type PolicySource interface {
	PolicyFor(ctx context.Context, repo string) (oci.Policy, error)
}

// strict is the PolicySource of a registry without policies.
type strict struct{}

func (strict) PolicyFor(context.Context, string) (oci.Policy, error) { return oci.DefaultPolicy(), nil }

// Option configures a Registry.
type Option func(*options) error

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.log = l; return nil }
}

// WithPartSize sets the multipart part size the upload protocol fills
// (default 8 MiB) and the smallest part it may write but for the last
// (default storage.MinPartSize, S3's limit). Tests shrink both.
func WithPartSize(part, min int64) Option {
	return func(o *options) error {
		o.partSize, o.minPartSize = part, min
		return nil
	}
}

// DefaultUploadTTL is how long an upload session lives from its start.
const DefaultUploadTTL = 24 * time.Hour

// WithDirectStep sets how long one request hashes a direct upload before
// it answers with how far it got (default 10 s). Tests shrink it.
func WithDirectStep(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("registry: direct step %v must be positive", d)
		}
		o.directStep = d
		return nil
	}
}

// WithDirectPart sets the smallest part of a direct upload (default
// 64 MiB). Tests shrink it.
func WithDirectPart(n int64) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("registry: direct part size %d must be positive", n)
		}
		o.directPart = n
		return nil
	}
}

// WithMaxSinglePut sets the largest blob written as one object (default
// 5 GiB, S3's limit for one PUT); larger ones are written in parts. Tests
// shrink it.
func WithMaxSinglePut(n int64) Option {
	return func(o *options) error { o.maxSinglePut = n; return nil }
}

// WithExclusiveStore declares that no other process uses the stores (the
// local backend holds a file lock on its database), so upload claims made
// by an earlier process are stale at once. Default: false (AWS mode, where
// many functions share the stores and claims expire after their lease).
func WithExclusiveStore() Option {
	return func(o *options) error { o.exclusive = true; return nil }
}

// WithUploadKey sets the key that signs upload session ids; instances
// sharing stores must share it (LoadUploadKey). Default: a random key,
// good for one process.
func WithUploadKey(key []byte) Option {
	return func(o *options) error {
		if len(key) < 32 {
			return errors.New("registry: upload key must be at least 32 bytes")
		}
		o.uploadKey = key
		return nil
	}
}

// WithPolicies sets where index policies come from (default: every
// repository strict).
func WithPolicies(src PolicySource) Option {
	return func(o *options) error { o.policies = src; return nil }
}

// WithSpeculativeMax sets how far an upload that named no digest
// algorithm is also hashed with sha512 (default 16 MiB); tests shorten it.
func WithSpeculativeMax(n int64) Option {
	return func(o *options) error { o.speculativeMax = n; return nil }
}

// WithClock sets the time source (default time.Now); tests use it.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

const (
	// defaultPartSize keeps 10,000 parts above 78 GiB per blob while a
	// request buffers at most one part in memory.
	defaultPartSize = 8 << 20
	// defaultMaxSegments bounds the buffered tail of tiny chunks; past it
	// the tail is merged into one object (at most one part of bytes).
	defaultMaxSegments = 8
	// defaultInlineManifestMax keeps manifest bodies inline in their
	// metadata item (DynamoDB items are capped at 400 KB).
	defaultInlineManifestMax = 64 << 10
	// defaultMaxSinglePut is the largest known-size monolithic body written
	// with one Put (S3 PutObject allows 5 GiB); larger ones go in parts.
	defaultMaxSinglePut = 5 << 30
	// defaultClaimLease bounds how long a crashed writer blocks a session
	// in shared mode; a live writer renews it after every part, so it need
	// only cover reading one part from the client and storing it.
	defaultClaimLease = time.Minute
	// defaultDirectStep is how long one request hashes a direct upload:
	// well within the front door's 30 s and the function's timeout.
	defaultDirectStep = 10 * time.Second
)

// New returns a Registry over blobs and meta.
func New(blobs storage.BlobStore, meta storage.MetaStore, opts ...Option) (*Registry, error) {
	o := options{
		log:               slog.New(slog.DiscardHandler),
		partSize:          defaultPartSize,
		minPartSize:       storage.MinPartSize,
		maxSegments:       defaultMaxSegments,
		inlineManifestMax: defaultInlineManifestMax,
		maxSinglePut:      defaultMaxSinglePut,
		uploadTTL:         DefaultUploadTTL,
		claimLease:        defaultClaimLease,
		directStep:        defaultDirectStep,
		directPart:        defaultDirectPart,
		policies:          strict{},
		now:               time.Now,
		linkWindow:        DefaultLinkWindow,
		grace:             DefaultGrace,
		speculativeMax:    defaultSpeculativeMax,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if blobs == nil || meta == nil {
		return nil, errors.New("registry: blob store and metadata store are required")
	}
	if o.minPartSize <= 0 || o.partSize < o.minPartSize {
		return nil, fmt.Errorf("registry: part size %d must be at least the minimum part size %d > 0", o.partSize, o.minPartSize)
	}
	key := o.uploadKey
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &Registry{blobs: blobs, meta: meta, opts: o, instance: newID()[:8] + "-", uploadKey: key}, nil
}

// ChunkMinLength is the chunk size clients should send (OCI-Chunk-Min-Length):
// chunks of at least a part avoid buffering in a tail.
func (r *Registry) ChunkMinLength() int64 { return r.opts.minPartSize }
