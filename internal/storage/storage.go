// Package storage declares Skiff's storage ports: small, registry-shaped
// interfaces that the registry core consumes and that each adapter (the
// embedded local store, the S3 + DynamoDB store) implements.
//
// The ports are shaped for S3 and DynamoDB: bytes live in a BlobStore of
// opaque object keys (chosen by the core), metadata lives in a MetaStore of
// single items. Every write is a single-item write; the ones that can race
// are conditional (ErrConflict, ErrExists). No operation needs a
// transaction, and the core orders its writes so that every crash point
// leaves a valid state.
//
// Errors: adapters translate native errors into the sentinels below and
// wrap them with context, so callers test with errors.Is.
package storage

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Sentinel errors every adapter returns (wrapped) for the conditions below.
var (
	// ErrNotFound: the object or item does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write lost (the item changed or vanished).
	ErrConflict = errors.New("conflict")
	// ErrExists: a create-only write found the item already there.
	ErrExists = errors.New("already exists")
	// ErrDigestMismatch: bytes handed to BlobStore.Put did not hash to the
	// expected digest; nothing was stored.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrFull: the store has no space left for a write (a full disk or
	// quota); the write did not happen, and what was stored before is kept.
	ErrFull = errors.New("storage full")
	// ErrNoPresign: a Presigner that has nothing to sign with; the caller
	// streams the bytes instead.
	ErrNoPresign = errors.New("presigning not available")
)

// Part is one uploaded part of a multipart object.
type Part struct {
	Number int    `json:"n"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
}

// BlobStore holds bytes under object keys. Keys are plain strings of
// [a-z0-9/._-] chosen by the core; adapters map them onto files or S3 keys
// and never interpret them.
//
// Multipart uploads follow S3: every part but the last must be at least
// MinPartSize bytes, part numbers run 1..10000, re-uploading a part number
// replaces it, and nothing is visible at the key until CompleteMultipart.
type BlobStore interface {
	// Put stores exactly size bytes from r at key, atomically: on any error,
	// including r failing or yielding a different number of bytes, nothing
	// is visible at key. A short reader fails wrapping io.ErrUnexpectedEOF;
	// a failing reader's own error is passed through (wrapped). If expect is non-empty, the adapter verifies the
	// bytes hash to it and fails with ErrDigestMismatch otherwise. Putting a
	// key that exists replaces it (content-addressed keys make that a no-op).
	Put(ctx context.Context, key string, size int64, expect digest.Digest, r io.Reader) error
	// Open reads length bytes of key from offset (length < 0: to the end).
	// offset == size or length == 0 read nothing; offset > size fails.
	Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat returns the size of the object at key.
	Stat(ctx context.Context, key string) (int64, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// CreateMultipart starts a multipart upload to key and returns its id.
	CreateMultipart(ctx context.Context, key string) (string, error)
	// UploadPart stores part number n (exactly size bytes from r).
	UploadPart(ctx context.Context, key, uploadID string, n int, size int64, r io.Reader) (Part, error)
	// CompleteMultipart assembles the parts, in order, into the object at key.
	// It must not copy the data. A part whose ETag differs from the stored
	// one fails the completion with ErrConflict; an unknown upload is
	// ErrNotFound.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error
	// AbortMultipart discards an upload; an unknown upload is not an error.
	AbortMultipart(ctx context.Context, key, uploadID string) error

	// List lists the objects whose key starts with prefix, in lexical
	// order of key, after p.After (a whole key), at most p.Limit.
	List(ctx context.Context, prefix string, p Page) ([]Object, error)
}

// MinPartSize is the smallest part S3 accepts but for the last one.
const MinPartSize = 5 << 20

// Presigner is an optional BlobStore capability: a URL a client can GET the
// object from directly (S3 presigned GET). Without it the server streams.
type Presigner interface {
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// PartPresigner is an optional BlobStore capability: a URL a client can
// PUT part n of a multipart upload to directly (S3 presigned UploadPart),
// so a large blob's bytes reach the store with no compute in their path.
type PartPresigner interface {
	PresignPart(ctx context.Context, key, uploadID string, n int, ttl time.Duration) (string, error)
}

// Blob is a blob linked into a repository: its digest, size and the object
// key holding its bytes.
type Blob struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	Key    string        `json:"key"`
	// Linked is when the link was made or last refreshed: a collection
	// keeps a link younger than its grace period, referenced or not.
	Linked time.Time `json:"linked,omitzero"`
	// Doomed names the collection that marked the link for deletion
	// (empty: live). A push that finds it doomed refreshes it, which
	// undoes the mark; the collection deletes it only if still marked.
	Doomed string `json:"doomed,omitempty"`
}

// Content is the one stored copy of a digest's bytes, which every link of
// that digest, in any repository, names.
type Content struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	Key    string        `json:"key"`
	// Linked is when a push last linked it (or stored it): a collection
	// deletes content only if nothing linked it since before the pass.
	Linked time.Time `json:"linked"`
}

// Object is one object of a BlobStore listing.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Manifest is a stored manifest. Body holds the bytes inline when the core
// chose to (small manifests); otherwise Key names the object holding them.
type Manifest struct {
	Digest       digest.Digest     `json:"digest"`
	MediaType    string            `json:"mediaType"`
	Size         int64             `json:"size"`
	Body         []byte            `json:"body,omitempty"`
	Key          string            `json:"key,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Subject      digest.Digest     `json:"subject,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// Refs are the digests the manifest names (config, layers, children).
	Refs    []digest.Digest `json:"refs,omitempty"`
	Created time.Time       `json:"created"`
	// Touched is when it was last pushed or used (a HEAD or GET by
	// digest, an index naming it): a retention rule never deletes a
	// manifest touched within the grace period.
	Touched time.Time `json:"touched,omitzero"`
	// Doomed names the collection that marked it for deletion (empty:
	// live); a use removes the mark, and the collection deletes it only
	// if still marked. Expired says a retention rule decided it goes: a
	// use does not undo that, a push of it does.
	Doomed  string `json:"doomed,omitempty"`
	Expired bool   `json:"expired,omitempty"`
}

// Age is when m was last pushed or used.
func (m Manifest) Age() time.Time {
	if m.Touched.After(m.Created) {
		return m.Touched
	}
	return m.Created
}

// Tag maps a tag name to a manifest digest.
type Tag struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest"`
	// Updated is when the tag was last pointed (zero: before tags had
	// times); retention ranks tags by it.
	Updated time.Time `json:"updated,omitzero"`
}

// Referrer is one manifest whose subject is another: the descriptor the
// referrers API lists.
type Referrer struct {
	Digest       digest.Digest     `json:"digest"`
	MediaType    string            `json:"mediaType"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Absent is a child an image index names that its repository does not
// hold: the index was accepted under a sparse-index policy.
type Absent struct {
	Index    digest.Digest `json:"index"`
	Platform string        `json:"platform,omitempty"`
}

// Segment is a buffered chunk of an upload that was too small to become a
// multipart part yet; it lives in the BlobStore at Key.
type Segment struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// Upload is a blob upload session. Version increases on every write; the
// core updates a session only if the version it read is still current.
type Upload struct {
	ID      string `json:"id"`
	Repo    string `json:"repo"`
	Offset  int64  `json:"offset"`
	Version int64  `json:"version"`
	// HashState holds the serialized hash states (encoding.BinaryMarshaler)
	// by algorithm, so no request ever re-reads bytes to hash them.
	HashState map[string][]byte `json:"hashState,omitempty"`
	// DigestAlgorithm is the algorithm the client said it will commit
	// with (POST ?digest-algorithm=), empty if it did not; the registry
	// derives it from the session id, so adapters need not store it.
	DigestAlgorithm digest.Algorithm `json:"digestAlgorithm,omitempty"`
	// Key and MultipartID locate the multipart object once a part exists.
	Key         string    `json:"key"`
	MultipartID string    `json:"multipartId,omitempty"`
	Parts       []Part    `json:"parts,omitempty"`
	Tail        []Segment `json:"tail,omitempty"`
	// Claim marks a request writing parts; others wait until ClaimUntil.
	Claim      string    `json:"claim,omitempty"`
	ClaimUntil time.Time `json:"claimUntil,omitzero"`
	Started    time.Time `json:"started"`
	Expires    time.Time `json:"expires"`
	// Done marks a finished or cancelled session, kept until it expires.
	Done bool `json:"done,omitempty"`
	// Digest is the blob a commit is assembling at Key, saved before the
	// multipart object is completed, so a collection can tell what the
	// object at Key is while the session lasts.
	Digest digest.Digest `json:"digest,omitempty"`
	// DirectSize marks a direct upload (Skiff's extension: the client
	// PUTs the parts to presigned URLs) and is the blob's size; zero for
	// the spec's uploads.
	DirectSize int64 `json:"directSize,omitempty"`
	// DirectPart is the part size the direct upload was opened with.
	DirectPart int64 `json:"directPart,omitempty"`
	// Assembled says the direct upload's parts are completed at Key; the
	// object is then hashed from Offset (the bytes verified so far) on,
	// and is no blob until every byte is.
	Assembled bool `json:"assembled,omitempty"`
}

// Setting is a versioned per-key document (per-repository settings such as
// the index policy). Value is opaque JSON to the store.
type Setting struct {
	Key     string `json:"key"`
	Value   []byte `json:"value"`
	Version int64  `json:"version"`
}

// Page asks for at most Limit items strictly after After, in lexical order.
// Limit <= 0 means no limit.
type Page struct {
	After string
	Limit int
}

// Blobs links blobs into repositories.
type Blobs interface {
	// GetBlob returns the link of d in repo.
	GetBlob(ctx context.Context, repo string, d digest.Digest) (Blob, error)
	// GetBlobs returns the links of ds that exist in repo (missing ones are
	// simply absent from the map): one round trip per 100 digests. ds may
	// hold duplicates and any number of digests.
	GetBlobs(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]Blob, error)
	// PutBlob links b into repo (idempotent).
	PutBlob(ctx context.Context, repo string, b Blob) error
	// DeleteBlob unlinks d from repo; ErrNotFound if it was not linked.
	DeleteBlob(ctx context.Context, repo string, d digest.Digest) error
	// ListBlobs lists the links of repo in lexical order of digest.
	ListBlobs(ctx context.Context, repo string, p Page) ([]Blob, error)
	// RefreshBlob sets the link's Linked to now and clears any Doomed mark,
	// if the link exists (ErrNotFound otherwise); it returns the link.
	RefreshBlob(ctx context.Context, repo string, d digest.Digest, now time.Time) (Blob, error)
	// DoomBlob marks the link with token if it is not marked and was
	// linked before before; ErrConflict otherwise (ErrNotFound if absent).
	DoomBlob(ctx context.Context, repo string, d digest.Digest, token string, before time.Time) error
	// DeleteDoomedBlob deletes the link if it is still marked with token;
	// ErrConflict otherwise (ErrNotFound if absent).
	DeleteDoomedBlob(ctx context.Context, repo string, d digest.Digest, token string) error
}

// Contents records the stored copy of each digest. Every push that links
// a digest first calls UpsertContent or TouchContent, so a collection can
// tell from Linked alone whether a link may have been made since it began.
type Contents interface {
	// UpsertContent records c as the copy of c.Digest unless one is
	// recorded already, sets Linked to c.Linked either way (never back to
	// an earlier time), and returns the record: its Key is c.Key if c won,
	// another copy's otherwise.
	UpsertContent(ctx context.Context, c Content) (Content, error)
	// TouchContent sets Linked to now (never back) if d is recorded;
	// ErrNotFound if not.
	TouchContent(ctx context.Context, d digest.Digest, now time.Time) (Content, error)
	// GetContent returns the record of d; ErrNotFound if none.
	GetContent(ctx context.Context, d digest.Digest) (Content, error)
	// DeleteContent deletes the record of d if it still names key and was
	// last linked before before; ErrConflict otherwise, ErrNotFound if absent.
	DeleteContent(ctx context.Context, d digest.Digest, key string, before time.Time) error
	// ListContents lists every record once, in an order of the store's
	// (stable, so p.After, a digest the last page ended with, resumes it).
	ListContents(ctx context.Context, p Page) ([]Content, error)
}

// Manifests stores the manifests of repositories.
type Manifests interface {
	GetManifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error)
	// GetManifests returns those of ds that exist in repo.
	GetManifests(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]Manifest, error)
	// PutManifest stores m (idempotent for the same digest).
	PutManifest(ctx context.Context, repo string, m Manifest) error
	// DeleteManifest removes d; ErrNotFound if absent.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	// ListManifests lists the manifests of repo in lexical order of digest.
	ListManifests(ctx context.Context, repo string, p Page) ([]Manifest, error)

	// The retention rules' marks, each one conditional single-item write
	// (ErrNotFound if the manifest is gone, ErrConflict if its condition
	// fails). PutManifest replaces the item, which clears every mark.

	// RefreshManifest records a use: Touched = now, Doomed removed.
	RefreshManifest(ctx context.Context, repo string, d digest.Digest, now time.Time) (Manifest, error)
	// DoomManifest marks an unmarked manifest last touched before before
	// (Doomed = token, Expired set).
	DoomManifest(ctx context.Context, repo string, d digest.Digest, token string, before time.Time) error
	// ExpireManifest sets Expired on a manifest too young to doom yet, if
	// it is still the push created names (a push after clears the mark;
	// a use does not).
	ExpireManifest(ctx context.Context, repo string, d digest.Digest, created time.Time) error
	// ReviveManifest removes Doomed and Expired (it is reachable again).
	ReviveManifest(ctx context.Context, repo string, d digest.Digest) error
	// DeleteDoomedManifest deletes the manifest if token still marks it.
	DeleteDoomedManifest(ctx context.Context, repo string, d digest.Digest, token string) error
}

// Tags name manifests.
type Tags interface {
	GetTag(ctx context.Context, repo, name string) (Tag, error)
	// PutTag points a tag at a manifest; the last writer wins.
	PutTag(ctx context.Context, repo string, t Tag) error
	// DeleteTag removes a tag; ErrNotFound if absent.
	DeleteTag(ctx context.Context, repo, name string) error
	// DeleteTagIf removes t.Name only if it still names t.Digest with
	// t.Updated (ErrConflict if it was pointed again, ErrNotFound if gone).
	DeleteTagIf(ctx context.Context, repo string, t Tag) error
	// ListTags lists the tags of repo in lexical order of name.
	ListTags(ctx context.Context, repo string, p Page) ([]Tag, error)
}

// Referrers index the manifests that name a subject.
type Referrers interface {
	// PutReferrer records that r refers to subject (idempotent).
	PutReferrer(ctx context.Context, repo string, subject digest.Digest, r Referrer) error
	// DeleteReferrer removes r from subject's referrers (missing is fine).
	DeleteReferrer(ctx context.Context, repo string, subject, r digest.Digest) error
	// ListReferrers lists subject's referrers in lexical order of digest.
	ListReferrers(ctx context.Context, repo string, subject digest.Digest, p Page) ([]Referrer, error)
}

// Absents record the children an index names that its repository does not
// hold (a partial mirror), so a pull of one can say why it is missing.
type Absents interface {
	// PutAbsent records that a.Index names child, which repo does not
	// hold (idempotent).
	PutAbsent(ctx context.Context, repo string, child digest.Digest, a Absent) error
	// ListAbsent lists the records of child in lexical order of index digest.
	ListAbsent(ctx context.Context, repo string, child digest.Digest, p Page) ([]Absent, error)
}

// Repositories records which repositories exist, for the catalog.
type Repositories interface {
	// PutRepository records repo (idempotent).
	PutRepository(ctx context.Context, repo string) error
	// HasRepository reports whether repo was recorded.
	HasRepository(ctx context.Context, repo string) (bool, error)
	// ListRepositories lists repositories in lexical order.
	ListRepositories(ctx context.Context, p Page) ([]string, error)
	// PutLinkedRepository records that repo has blob links (idempotent),
	// apart from the catalog, which lists repositories with manifests: the
	// collector visits both.
	PutLinkedRepository(ctx context.Context, repo string) error
	// ListLinkedRepositories lists those in lexical order.
	ListLinkedRepositories(ctx context.Context, p Page) ([]string, error)
}

// Uploads stores upload sessions.
type Uploads interface {
	// CreateUpload stores a new session; ErrExists if the id is taken.
	CreateUpload(ctx context.Context, u Upload) error
	// GetUpload returns the session id; ErrNotFound if unknown.
	GetUpload(ctx context.Context, id string) (Upload, error)
	// UpdateUpload replaces the session if its stored Version equals
	// prev, storing Version prev+1 whatever u.Version says; ErrConflict
	// otherwise (including when it is gone). Sessions are never deleted
	// one by one: they expire (the janitor, DynamoDB's TTL).
	UpdateUpload(ctx context.Context, u Upload, prev int64) error
}

// Settings stores versioned documents by key.
type Settings interface {
	// GetSetting returns the setting at key; ErrNotFound if absent.
	GetSetting(ctx context.Context, key string) (Setting, error)
	// PutSetting writes s if the stored version equals prev (0: must not
	// exist yet); ErrConflict otherwise. The stored version becomes prev+1.
	PutSetting(ctx context.Context, s Setting, prev int64) error
	// DeleteSetting removes key if its version equals prev; ErrConflict
	// otherwise, ErrNotFound if absent.
	DeleteSetting(ctx context.Context, key string, prev int64) error
	// ListSettings lists the settings whose key starts with prefix, in
	// lexical order of key, after prefix+p.After.
	ListSettings(ctx context.Context, prefix string, p Page) ([]Setting, error)
}

// EachSetting calls fn on every setting whose key starts with prefix, in
// lexical order, reading a page of 100 at a time.
func EachSetting(ctx context.Context, s Settings, prefix string, fn func(Setting) error) error {
	page := Page{Limit: 100}
	for {
		ss, err := s.ListSettings(ctx, prefix, page)
		if err != nil {
			return err
		}
		for _, st := range ss {
			if err := fn(st); err != nil {
				return err
			}
		}
		if len(ss) < page.Limit {
			return nil
		}
		page.After = strings.TrimPrefix(ss[len(ss)-1].Key, prefix)
	}
}

// Count is a key's count in its open window, which ends at Ends.
type Count struct {
	N    int64
	Ends time.Time
}

// Counters count events per key in fixed windows, in the store, so every
// process on it shares them (failed logins: in AWS mode every function
// instance sees the same counts). A key's window opens at its first event
// and lasts the window given then; the next event after it ends opens a
// new one. Stores may forget a key soon after its window ended.
type Counters interface {
	// Reserve adds one to key's count in the window open at now, or opens
	// [now, now+window) with a count of one, unless the open window's
	// count already reached limit (limit <= 0: no limit). It returns the
	// count and whether this event was counted. The check and the add are
	// one atomic step: of concurrent calls on a key, at most limit are
	// counted per window, on every process sharing the store.
	Reserve(ctx context.Context, key string, now time.Time, window time.Duration, limit int64) (Count, bool, error)
	// Release takes back one event counted by Reserve in the window that
	// ends at ends, unless that window's count reached limit (limit <= 0:
	// no limit): a window that was used up stays closed until it ends. It
	// does nothing once the window is over, and a count never drops below
	// zero.
	Release(ctx context.Context, key string, ends time.Time, limit int64) error
	// GetCounts returns the counts of those keys whose window is open at now.
	GetCounts(ctx context.Context, keys []string, now time.Time) (map[string]Count, error)
}

// MetaStore is the whole metadata port.
type MetaStore interface {
	Blobs
	Contents
	Manifests
	Tags
	Referrers
	Absents
	Repositories
	Uploads
	Settings
	Counters
}
