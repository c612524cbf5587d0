package awsstore

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// Key layout (the tree in doc.go is the reference). Every partition key is
// either a fixed word without '#' or a prefix ending in '#' followed by the
// whole name, so partition keys never collide: "R#a/b" and "R#a/bc" are
// different partitions, never prefixes of one another in a key condition.
const (
	attrPK        = "PK"
	attrSK        = "SK"
	attrVersion   = "version"
	attrExpiresAt = "expiresAt"

	pkRepos    = "REPOS"    // SK: repository name
	pkLinked   = "LINKED"   // SK: repository name (repositories with blob links)
	pkSettings = "SETTINGS" // SK: setting key
	pkRepo     = "R#"       // + repository name
	pkUpload   = "U#"       // + upload id
	skUpload   = "U"        // an upload session is alone in its partition
	pkCounter  = "C#"       // + counter key
	skCounter  = "C"        // a counter is alone in its partition
	pkContent  = "D#"       // + 2 hex digits of the digest: one of 256 shards; SK: digest

	skBlob     = "B#" // + digest
	skManifest = "M#" // + digest
	skTag      = "T#" // + tag name
	skReferrer = "F#" // + subject digest + "#" + referrer digest
)

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func repoPK(repo string) string { return pkRepo + repo }

// referrerPrefix is the sort key prefix of subject's referrers. A '#' in
// the subject would let one subject's prefix match another's items, so it
// is refused (no valid digest contains one).
func referrerPrefix(subject digest.Digest) (string, error) {
	if subject == "" || strings.ContainsRune(string(subject), '#') {
		return "", fmt.Errorf("invalid subject digest %q", subject)
	}
	return skReferrer + string(subject) + "#", nil
}

// formatItemTime keeps full precision (RFC 3339 with nanoseconds, UTC) and
// stores the zero time as an absent attribute.
func formatItemTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseItemTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// The item types below are what attributevalue marshals. Names that the
// key already holds (digest, tag name, upload id, setting key) are not
// repeated in attributes: the key is the single source of truth.

type repoItem struct {
	PK string `dynamodbav:"PK"`
	SK string `dynamodbav:"SK"`
}

// Times that conditions compare are stored as Unix nanoseconds (a
// number): RFC 3339 strings with a varying number of fraction digits do
// not sort as the times they name.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

type blobItem struct {
	PK     string `dynamodbav:"PK"`
	SK     string `dynamodbav:"SK"`
	Size   int64  `dynamodbav:"size"`
	Key    string `dynamodbav:"key,omitempty"`
	Linked int64  `dynamodbav:"linked,omitempty"`
	Doomed string `dynamodbav:"doomed,omitempty"`
}

func newBlobItem(repo string, b storage.Blob) blobItem {
	return blobItem{PK: repoPK(repo), SK: skBlob + string(b.Digest), Size: b.Size, Key: b.Key, Linked: unixNano(b.Linked), Doomed: b.Doomed}
}

func (it blobItem) blob() storage.Blob {
	return storage.Blob{Digest: digest.Digest(strings.TrimPrefix(it.SK, skBlob)), Size: it.Size, Key: it.Key, Linked: fromUnixNano(it.Linked), Doomed: it.Doomed}
}

// contentPK is the shard of d's content record: the first two hex digits
// of its encoded part, so records spread over 256 partitions (no hot
// partition) that a collection can still list in order.
func contentPK(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("invalid digest %q: %w", d, err)
	}
	return pkContent + d.Encoded()[:2], nil
}

type contentItem struct {
	PK     string `dynamodbav:"PK"`
	SK     string `dynamodbav:"SK"`
	Size   int64  `dynamodbav:"size"`
	Key    string `dynamodbav:"key"`
	Linked int64  `dynamodbav:"linked"`
}

func (it contentItem) content() storage.Content {
	return storage.Content{Digest: digest.Digest(it.SK), Size: it.Size, Key: it.Key, Linked: fromUnixNano(it.Linked)}
}

type manifestItem struct {
	PK           string            `dynamodbav:"PK"`
	SK           string            `dynamodbav:"SK"`
	MediaType    string            `dynamodbav:"mediaType,omitempty"`
	Size         int64             `dynamodbav:"size"`
	Body         []byte            `dynamodbav:"body,omitempty"`
	Key          string            `dynamodbav:"key,omitempty"`
	ArtifactType string            `dynamodbav:"artifactType,omitempty"`
	Subject      string            `dynamodbav:"subject,omitempty"`
	Annotations  map[string]string `dynamodbav:"annotations,omitempty"`
	Refs         []string          `dynamodbav:"refs,omitempty"` // a list: order matters
	Created      string            `dynamodbav:"created,omitempty"`
	// Touched is a number (Unix ns), so that a condition can compare it;
	// a put writes the later of created and touched.
	Touched int64  `dynamodbav:"touched,omitempty"`
	Doomed  string `dynamodbav:"doomed,omitempty"`
	Expired bool   `dynamodbav:"expired,omitempty"`
}

func newManifestItem(repo string, m storage.Manifest) manifestItem {
	refs := make([]string, len(m.Refs))
	for i, r := range m.Refs {
		refs[i] = string(r)
	}
	return manifestItem{
		PK:           repoPK(repo),
		SK:           skManifest + string(m.Digest),
		MediaType:    m.MediaType,
		Size:         m.Size,
		Body:         m.Body,
		Key:          m.Key,
		ArtifactType: m.ArtifactType,
		Subject:      string(m.Subject),
		Annotations:  m.Annotations,
		Refs:         refs,
		Created:      formatItemTime(m.Created),
		Touched:      unixNano(m.Age()),
		Doomed:       m.Doomed,
		Expired:      m.Expired,
	}
}

func (it manifestItem) manifest() (storage.Manifest, error) {
	created, err := parseItemTime(it.Created)
	if err != nil {
		return storage.Manifest{}, fmt.Errorf("item %s: created: %w", it.SK, err)
	}
	var refs []digest.Digest
	for _, r := range it.Refs {
		refs = append(refs, digest.Digest(r))
	}
	return storage.Manifest{
		Digest:       digest.Digest(strings.TrimPrefix(it.SK, skManifest)),
		MediaType:    it.MediaType,
		Size:         it.Size,
		Body:         it.Body,
		Key:          it.Key,
		ArtifactType: it.ArtifactType,
		Subject:      digest.Digest(it.Subject),
		Annotations:  it.Annotations,
		Refs:         refs,
		Created:      created,
		Touched:      laterThan(fromUnixNano(it.Touched), created),
		Doomed:       it.Doomed,
		Expired:      it.Expired,
	}, nil
}

// laterThan returns t if it is after base, else zero: a put stores the
// later of created and touched, and a manifest never touched reads back so.
func laterThan(t, base time.Time) time.Time {
	if t.After(base) {
		return t
	}
	return time.Time{}
}

type tagItem struct {
	PK      string `dynamodbav:"PK"`
	SK      string `dynamodbav:"SK"`
	Digest  string `dynamodbav:"digest"`
	Updated int64  `dynamodbav:"updated,omitempty"` // Unix ns
}

func (it tagItem) tag() storage.Tag {
	return storage.Tag{Name: strings.TrimPrefix(it.SK, skTag), Digest: digest.Digest(it.Digest), Updated: fromUnixNano(it.Updated)}
}

type referrerItem struct {
	PK           string            `dynamodbav:"PK"`
	SK           string            `dynamodbav:"SK"`
	MediaType    string            `dynamodbav:"mediaType,omitempty"`
	Size         int64             `dynamodbav:"size"`
	ArtifactType string            `dynamodbav:"artifactType,omitempty"`
	Annotations  map[string]string `dynamodbav:"annotations,omitempty"`
}

func (it referrerItem) referrer() storage.Referrer {
	// The referrer's digest is what follows the last '#' of the sort key.
	d := it.SK[strings.LastIndexByte(it.SK, '#')+1:]
	return storage.Referrer{
		Digest:       digest.Digest(d),
		MediaType:    it.MediaType,
		Size:         it.Size,
		ArtifactType: it.ArtifactType,
		Annotations:  it.Annotations,
	}
}

type partItem struct {
	Number int    `dynamodbav:"n"`
	ETag   string `dynamodbav:"etag"`
	Size   int64  `dynamodbav:"size"`
}

type segmentItem struct {
	Key  string `dynamodbav:"key"`
	Size int64  `dynamodbav:"size"`
}

type uploadItem struct {
	PK          string            `dynamodbav:"PK"`
	SK          string            `dynamodbav:"SK"`
	Repo        string            `dynamodbav:"repo"`
	Offset      int64             `dynamodbav:"offset"`
	Version     int64             `dynamodbav:"version"`
	HashState   map[string][]byte `dynamodbav:"hashState,omitempty"`
	Key         string            `dynamodbav:"key,omitempty"`
	MultipartID string            `dynamodbav:"multipartId,omitempty"`
	Parts       []partItem        `dynamodbav:"parts,omitempty"`
	Tail        []segmentItem     `dynamodbav:"tail,omitempty"`
	Claim       string            `dynamodbav:"claim,omitempty"`
	ClaimUntil  string            `dynamodbav:"claimUntil,omitempty"`
	Started     string            `dynamodbav:"started,omitempty"`
	Expires     string            `dynamodbav:"expires,omitempty"`
	// ExpiresAt is Expires in epoch seconds, the form DynamoDB's TTL reads.
	// TTL deletes lazily (typically within days), so readers must still
	// check Expires; a zero Expires leaves the attribute out (no TTL).
	ExpiresAt  int64  `dynamodbav:"expiresAt,omitempty"`
	Done       bool   `dynamodbav:"done,omitempty"`
	Digest     string `dynamodbav:"digest,omitempty"`
	DirectSize int64  `dynamodbav:"directSize,omitempty"`
	DirectPart int64  `dynamodbav:"directPart,omitempty"`
	Assembled  bool   `dynamodbav:"assembled,omitempty"`
}

func newUploadItem(u storage.Upload, version int64) uploadItem {
	it := uploadItem{
		PK:          pkUpload + u.ID,
		SK:          skUpload,
		Repo:        u.Repo,
		Offset:      u.Offset,
		Version:     version,
		HashState:   u.HashState,
		Key:         u.Key,
		MultipartID: u.MultipartID,
		Claim:       u.Claim,
		ClaimUntil:  formatItemTime(u.ClaimUntil),
		Started:     formatItemTime(u.Started),
		Expires:     formatItemTime(u.Expires),
		Done:        u.Done,
		Digest:      string(u.Digest),
		DirectSize:  u.DirectSize,
		DirectPart:  u.DirectPart,
		Assembled:   u.Assembled,
	}
	if !u.Expires.IsZero() {
		it.ExpiresAt = u.Expires.Unix()
	}
	for _, p := range u.Parts {
		it.Parts = append(it.Parts, partItem(p))
	}
	for _, s := range u.Tail {
		it.Tail = append(it.Tail, segmentItem(s))
	}
	return it
}

func (it uploadItem) upload() (storage.Upload, error) {
	u := storage.Upload{
		ID:          strings.TrimPrefix(it.PK, pkUpload),
		Repo:        it.Repo,
		Offset:      it.Offset,
		Version:     it.Version,
		HashState:   it.HashState,
		Key:         it.Key,
		MultipartID: it.MultipartID,
		Claim:       it.Claim,
		Done:        it.Done,
		Digest:      digest.Digest(it.Digest),
		DirectSize:  it.DirectSize,
		DirectPart:  it.DirectPart,
		Assembled:   it.Assembled,
	}
	for _, p := range it.Parts {
		u.Parts = append(u.Parts, storage.Part(p))
	}
	for _, s := range it.Tail {
		u.Tail = append(u.Tail, storage.Segment(s))
	}
	var err error
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&u.ClaimUntil, it.ClaimUntil}, {&u.Started, it.Started}, {&u.Expires, it.Expires}} {
		if *f.dst, err = parseItemTime(f.src); err != nil {
			return storage.Upload{}, fmt.Errorf("upload item %s: %w", it.PK, err)
		}
	}
	return u, nil
}

type settingItem struct {
	PK      string `dynamodbav:"PK"`
	SK      string `dynamodbav:"SK"`
	Value   []byte `dynamodbav:"value,omitempty"`
	Version int64  `dynamodbav:"version"`
}

func (it settingItem) setting() storage.Setting {
	return storage.Setting{Key: it.SK, Value: it.Value, Version: it.Version}
}
