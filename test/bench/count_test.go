package bench

import (
	"context"
	"io"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// portCounter counts calls on the storage ports by "Blob.<method>" and
// "Meta.<method>", and the bytes that flow through the blob port: consumed
// from the reader of Put and UploadPart, read from what Open returns. The
// embedded backend has no AWS requests, so these are its "store
// operations"; on the AWS backend only its byte counts are used, to break
// the S3 bytes down by port method.
type portCounter struct {
	mu    sync.Mutex
	ops   map[string]int
	bytes map[string]*atomic.Int64 // by "Blob.Put", "Blob.UploadPart", "Blob.Open"
}

func newPortCounter() *portCounter {
	c := &portCounter{ops: map[string]int{}, bytes: map[string]*atomic.Int64{}}
	for _, m := range []string{"Blob.Put", "Blob.UploadPart", "Blob.Open"} {
		c.bytes[m] = new(atomic.Int64)
	}
	return c
}

func (c *portCounter) count(op string) {
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
}

func (c *portCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.ops)
	for _, n := range c.bytes {
		n.Store(0)
	}
}

// snapshot returns the calls and the bytes by method counted so far.
func (c *portCounter) snapshot() (map[string]int, map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := make(map[string]int64, len(c.bytes))
	for m, n := range c.bytes {
		b[m] = n.Load()
	}
	return maps.Clone(c.ops), b
}

// written is what the blob store took in (Put + UploadPart), read what it
// gave out (Open).
func (c *portCounter) written() int64 {
	return c.bytes["Blob.Put"].Load() + c.bytes["Blob.UploadPart"].Load()
}

func (c *portCounter) read() int64 { return c.bytes["Blob.Open"].Load() }

// countReader adds the bytes read through it to n.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (r *countReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}

type countReadCloser struct {
	countReader
	c io.Closer
}

func (r *countReadCloser) Close() error { return r.c.Close() }

// countingBlobs wraps a storage.BlobStore. It keeps storage.Presigner
// visible when the wrapped store has it (see wrapBlobs).
//
// The port interfaces are embedded so that the package keeps compiling when
// a port gains a method; checkCounted (run by every benchmark's setup)
// fails loudly if a port method is not counted.
type countingBlobs struct {
	storage.BlobStore
	c *portCounter
}

type countingPresigningBlobs struct {
	countingBlobs
	p storage.Presigner
}

func (b countingPresigningBlobs) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	b.c.count("Blob.PresignGet")
	return b.p.PresignGet(ctx, key, ttl)
}

// wrapBlobs returns s counted by c, with the optional interfaces s has.
func wrapBlobs(s storage.BlobStore, c *portCounter) storage.BlobStore {
	cb := countingBlobs{BlobStore: s, c: c}
	if p, ok := s.(storage.Presigner); ok {
		return countingPresigningBlobs{cb, p}
	}
	return cb
}

func (b countingBlobs) Put(ctx context.Context, key string, size int64, expect digest.Digest, r io.Reader) error {
	b.c.count("Blob.Put")
	return b.BlobStore.Put(ctx, key, size, expect, &countReader{r: r, n: b.c.bytes["Blob.Put"]})
}

func (b countingBlobs) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	b.c.count("Blob.Open")
	rc, err := b.BlobStore.Open(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return &countReadCloser{countReader{r: rc, n: b.c.bytes["Blob.Open"]}, rc}, nil
}

func (b countingBlobs) Stat(ctx context.Context, key string) (int64, error) {
	b.c.count("Blob.Stat")
	return b.BlobStore.Stat(ctx, key)
}

func (b countingBlobs) Delete(ctx context.Context, key string) error {
	b.c.count("Blob.Delete")
	return b.BlobStore.Delete(ctx, key)
}

func (b countingBlobs) CreateMultipart(ctx context.Context, key string) (string, error) {
	b.c.count("Blob.CreateMultipart")
	return b.BlobStore.CreateMultipart(ctx, key)
}

func (b countingBlobs) UploadPart(ctx context.Context, key, uploadID string, n int, size int64, r io.Reader) (storage.Part, error) {
	b.c.count("Blob.UploadPart")
	return b.BlobStore.UploadPart(ctx, key, uploadID, n, size, &countReader{r: r, n: b.c.bytes["Blob.UploadPart"]})
}

func (b countingBlobs) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) error {
	b.c.count("Blob.CompleteMultipart")
	return b.BlobStore.CompleteMultipart(ctx, key, uploadID, parts)
}

func (b countingBlobs) AbortMultipart(ctx context.Context, key, uploadID string) error {
	b.c.count("Blob.AbortMultipart")
	return b.BlobStore.AbortMultipart(ctx, key, uploadID)
}

// countingMeta wraps a storage.MetaStore, counting every call.
type countingMeta struct {
	storage.MetaStore
	c *portCounter
}

func (m countingMeta) GetBlob(ctx context.Context, repo string, d digest.Digest) (storage.Blob, error) {
	m.c.count("Meta.GetBlob")
	return m.MetaStore.GetBlob(ctx, repo, d)
}

func (m countingMeta) GetBlobs(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]storage.Blob, error) {
	m.c.count("Meta.GetBlobs")
	return m.MetaStore.GetBlobs(ctx, repo, ds)
}

func (m countingMeta) PutBlob(ctx context.Context, repo string, b storage.Blob) error {
	m.c.count("Meta.PutBlob")
	return m.MetaStore.PutBlob(ctx, repo, b)
}

func (m countingMeta) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	m.c.count("Meta.DeleteBlob")
	return m.MetaStore.DeleteBlob(ctx, repo, d)
}

func (m countingMeta) GetManifest(ctx context.Context, repo string, d digest.Digest) (storage.Manifest, error) {
	m.c.count("Meta.GetManifest")
	return m.MetaStore.GetManifest(ctx, repo, d)
}

func (m countingMeta) GetManifests(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]storage.Manifest, error) {
	m.c.count("Meta.GetManifests")
	return m.MetaStore.GetManifests(ctx, repo, ds)
}

func (m countingMeta) PutManifest(ctx context.Context, repo string, mf storage.Manifest) error {
	m.c.count("Meta.PutManifest")
	return m.MetaStore.PutManifest(ctx, repo, mf)
}

func (m countingMeta) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	m.c.count("Meta.DeleteManifest")
	return m.MetaStore.DeleteManifest(ctx, repo, d)
}

func (m countingMeta) GetTag(ctx context.Context, repo, name string) (storage.Tag, error) {
	m.c.count("Meta.GetTag")
	return m.MetaStore.GetTag(ctx, repo, name)
}

func (m countingMeta) PutTag(ctx context.Context, repo string, t storage.Tag) error {
	m.c.count("Meta.PutTag")
	return m.MetaStore.PutTag(ctx, repo, t)
}

func (m countingMeta) DeleteTag(ctx context.Context, repo, name string) error {
	m.c.count("Meta.DeleteTag")
	return m.MetaStore.DeleteTag(ctx, repo, name)
}

func (m countingMeta) ListTags(ctx context.Context, repo string, p storage.Page) ([]storage.Tag, error) {
	m.c.count("Meta.ListTags")
	return m.MetaStore.ListTags(ctx, repo, p)
}

func (m countingMeta) PutReferrer(ctx context.Context, repo string, subject digest.Digest, r storage.Referrer) error {
	m.c.count("Meta.PutReferrer")
	return m.MetaStore.PutReferrer(ctx, repo, subject, r)
}

func (m countingMeta) DeleteReferrer(ctx context.Context, repo string, subject, r digest.Digest) error {
	m.c.count("Meta.DeleteReferrer")
	return m.MetaStore.DeleteReferrer(ctx, repo, subject, r)
}

func (m countingMeta) ListReferrers(ctx context.Context, repo string, subject digest.Digest, p storage.Page) ([]storage.Referrer, error) {
	m.c.count("Meta.ListReferrers")
	return m.MetaStore.ListReferrers(ctx, repo, subject, p)
}

func (m countingMeta) PutAbsent(ctx context.Context, repo string, child digest.Digest, a storage.Absent) error {
	m.c.count("Meta.PutAbsent")
	return m.MetaStore.PutAbsent(ctx, repo, child, a)
}

func (m countingMeta) ListAbsent(ctx context.Context, repo string, child digest.Digest, p storage.Page) ([]storage.Absent, error) {
	m.c.count("Meta.ListAbsent")
	return m.MetaStore.ListAbsent(ctx, repo, child, p)
}

func (m countingMeta) PutRepository(ctx context.Context, repo string) error {
	m.c.count("Meta.PutRepository")
	return m.MetaStore.PutRepository(ctx, repo)
}

func (m countingMeta) Reserve(ctx context.Context, key string, now time.Time, window time.Duration, limit int64) (storage.Count, bool, error) {
	m.c.count("Meta.Reserve")
	return m.MetaStore.Reserve(ctx, key, now, window, limit)
}

func (m countingMeta) Release(ctx context.Context, key string, ends time.Time, limit int64) error {
	m.c.count("Meta.Release")
	return m.MetaStore.Release(ctx, key, ends, limit)
}

func (m countingMeta) GetCounts(ctx context.Context, keys []string, now time.Time) (map[string]storage.Count, error) {
	m.c.count("Meta.GetCounts")
	return m.MetaStore.GetCounts(ctx, keys, now)
}

func (m countingMeta) HasRepository(ctx context.Context, repo string) (bool, error) {
	m.c.count("Meta.HasRepository")
	return m.MetaStore.HasRepository(ctx, repo)
}

func (m countingMeta) ListRepositories(ctx context.Context, p storage.Page) ([]string, error) {
	m.c.count("Meta.ListRepositories")
	return m.MetaStore.ListRepositories(ctx, p)
}

func (m countingMeta) CreateUpload(ctx context.Context, u storage.Upload) error {
	m.c.count("Meta.CreateUpload")
	return m.MetaStore.CreateUpload(ctx, u)
}

func (m countingMeta) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	m.c.count("Meta.GetUpload")
	return m.MetaStore.GetUpload(ctx, id)
}

func (m countingMeta) UpdateUpload(ctx context.Context, u storage.Upload, prev int64) error {
	m.c.count("Meta.UpdateUpload")
	return m.MetaStore.UpdateUpload(ctx, u, prev)
}

func (m countingMeta) GetSetting(ctx context.Context, key string) (storage.Setting, error) {
	m.c.count("Meta.GetSetting")
	return m.MetaStore.GetSetting(ctx, key)
}

func (m countingMeta) PutSetting(ctx context.Context, s storage.Setting, prev int64) error {
	m.c.count("Meta.PutSetting")
	return m.MetaStore.PutSetting(ctx, s, prev)
}

func (m countingMeta) DeleteSetting(ctx context.Context, key string, prev int64) error {
	m.c.count("Meta.DeleteSetting")
	return m.MetaStore.DeleteSetting(ctx, key, prev)
}

func (m countingMeta) ListSettings(ctx context.Context, prefix string, p storage.Page) ([]storage.Setting, error) {
	m.c.count("Meta.ListSettings")
	return m.MetaStore.ListSettings(ctx, prefix, p)
}

var (
	_ storage.BlobStore = countingBlobs{}
	_ storage.Presigner = countingPresigningBlobs{}
	_ storage.MetaStore = countingMeta{}
)

// checkCounted returns the port methods the counting wrappers would pass
// through uncounted (a method added to a port after this file was
// written). It calls every method of both ports, with zero arguments, on
// wrappers over nil stores: a counted method counts, then panics reaching
func (b countingBlobs) List(ctx context.Context, prefix string, p storage.Page) ([]storage.Object, error) {
	b.c.count("Blob.List")
	return b.BlobStore.List(ctx, prefix, p)
}

func (m countingMeta) PutLinkedRepository(ctx context.Context, repo string) error {
	m.c.count("Meta.PutLinkedRepository")
	return m.MetaStore.PutLinkedRepository(ctx, repo)
}

func (m countingMeta) ListLinkedRepositories(ctx context.Context, p storage.Page) ([]string, error) {
	m.c.count("Meta.ListLinkedRepositories")
	return m.MetaStore.ListLinkedRepositories(ctx, p)
}

func (m countingMeta) ListBlobs(ctx context.Context, repo string, p storage.Page) ([]storage.Blob, error) {
	m.c.count("Meta.ListBlobs")
	return m.MetaStore.ListBlobs(ctx, repo, p)
}

func (m countingMeta) RefreshBlob(ctx context.Context, repo string, d digest.Digest, now time.Time) (storage.Blob, error) {
	m.c.count("Meta.RefreshBlob")
	return m.MetaStore.RefreshBlob(ctx, repo, d, now)
}

func (m countingMeta) DoomBlob(ctx context.Context, repo string, d digest.Digest, token string, before time.Time) error {
	m.c.count("Meta.DoomBlob")
	return m.MetaStore.DoomBlob(ctx, repo, d, token, before)
}

func (m countingMeta) DeleteDoomedBlob(ctx context.Context, repo string, d digest.Digest, token string) error {
	m.c.count("Meta.DeleteDoomedBlob")
	return m.MetaStore.DeleteDoomedBlob(ctx, repo, d, token)
}

func (m countingMeta) ListManifests(ctx context.Context, repo string, p storage.Page) ([]storage.Manifest, error) {
	m.c.count("Meta.ListManifests")
	return m.MetaStore.ListManifests(ctx, repo, p)
}

func (m countingMeta) UpsertContent(ctx context.Context, c storage.Content) (storage.Content, error) {
	m.c.count("Meta.UpsertContent")
	return m.MetaStore.UpsertContent(ctx, c)
}

func (m countingMeta) TouchContent(ctx context.Context, d digest.Digest, now time.Time) (storage.Content, error) {
	m.c.count("Meta.TouchContent")
	return m.MetaStore.TouchContent(ctx, d, now)
}

func (m countingMeta) GetContent(ctx context.Context, d digest.Digest) (storage.Content, error) {
	m.c.count("Meta.GetContent")
	return m.MetaStore.GetContent(ctx, d)
}

func (m countingMeta) DeleteContent(ctx context.Context, d digest.Digest, key string, before time.Time) error {
	m.c.count("Meta.DeleteContent")
	return m.MetaStore.DeleteContent(ctx, d, key, before)
}

func (m countingMeta) ListContents(ctx context.Context, p storage.Page) ([]storage.Content, error) {
	m.c.count("Meta.ListContents")
	return m.MetaStore.ListContents(ctx, p)
}

// the nil store; an uncounted one panics without counting.
func checkCounted() []string {
	var missing []string
	probe := func(prefix string, iface reflect.Type, wrapper any, c *portCounter) {
		v := reflect.ValueOf(wrapper)
		for i := range iface.NumMethod() {
			name := iface.Method(i).Name
			m := v.MethodByName(name)
			args := make([]reflect.Value, m.Type().NumIn())
			for j := range args {
				args[j] = reflect.Zero(m.Type().In(j))
			}
			func() {
				defer func() { _ = recover() }()
				m.Call(args)
			}()
			if ops, _ := c.snapshot(); ops[prefix+name] != 1 {
				missing = append(missing, iface.String()+"."+name)
			}
			c.reset()
		}
	}
	c := newPortCounter()
	probe("Blob.", reflect.TypeFor[storage.BlobStore](), countingBlobs{c: c}, c)
	probe("Meta.", reflect.TypeFor[storage.MetaStore](), countingMeta{c: c}, c)
	return missing
}

func (m countingMeta) RefreshManifest(ctx context.Context, repo string, d digest.Digest, now time.Time) (storage.Manifest, error) {
	m.c.count("Meta.RefreshManifest")
	return m.MetaStore.RefreshManifest(ctx, repo, d, now)
}

func (m countingMeta) DoomManifest(ctx context.Context, repo string, d digest.Digest, token string, before time.Time) error {
	m.c.count("Meta.DoomManifest")
	return m.MetaStore.DoomManifest(ctx, repo, d, token, before)
}

func (m countingMeta) ExpireManifest(ctx context.Context, repo string, d digest.Digest, created time.Time) error {
	m.c.count("Meta.ExpireManifest")
	return m.MetaStore.ExpireManifest(ctx, repo, d, created)
}

func (m countingMeta) ReviveManifest(ctx context.Context, repo string, d digest.Digest) error {
	m.c.count("Meta.ReviveManifest")
	return m.MetaStore.ReviveManifest(ctx, repo, d)
}

func (m countingMeta) DeleteDoomedManifest(ctx context.Context, repo string, d digest.Digest, token string) error {
	m.c.count("Meta.DeleteDoomedManifest")
	return m.MetaStore.DeleteDoomedManifest(ctx, repo, d, token)
}

func (m countingMeta) DeleteTagIf(ctx context.Context, repo string, t storage.Tag) error {
	m.c.count("Meta.DeleteTagIf")
	return m.MetaStore.DeleteTagIf(ctx, repo, t)
}
