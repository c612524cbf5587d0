package local

import (
	"context"
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// Top-level directories of a BlobStore (see doc.go).
const (
	objectsDir   = "objects"
	multipartDir = "multipart"
	partsDir     = "parts"
	trashDir     = "trash"
)

// Every object file starts with a header saying what follows, so a plain
// Put and a CompleteMultipart can replace each other with one rename.
const (
	headerSize      = 8
	dataHeader      = "skiffD1\n" // the object's bytes follow
	compositeHeader = "skiffC1\n" // a JSON composite follows
)

// maxCompositeSize bounds the composite JSON read into memory: 10000 parts
// take well under 1 MiB.
const maxCompositeSize = 4 << 20

// BlobStore is a storage.BlobStore on a local directory. Writes go to a
// temporary file in the destination directory, are fsynced and renamed into
// place, and the directory is fsynced, so a crash at any point leaves either
// the old object or the new one, never part of one. Leftover temporary
// files and part directories of a crash are garbage, never visible.
type BlobStore struct {
	root        string
	minPartSize int64
}

// Option configures a BlobStore.
type Option func(*BlobStore)

// WithMinPartSize sets the smallest part accepted but for the last
// (default storage.MinPartSize, as S3). Tests of callers lower it to
// exercise multipart paths with small data.
func WithMinPartSize(n int64) Option { return func(s *BlobStore) { s.minPartSize = n } }

// NewBlobStore returns a BlobStore keeping its files under dir, which is
// created if missing. One process at a time should use a directory.
func NewBlobStore(dir string, opts ...Option) (*BlobStore, error) {
	if dir == "" {
		return nil, errors.New("new blob store: empty directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("new blob store: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("new blob store: %w", err)
	}
	for _, d := range []string{objectsDir, multipartDir, partsDir, trashDir} {
		if err := mkdirAll(root, filepath.Join(root, d)); err != nil {
			return nil, fmt.Errorf("new blob store: %w", err)
		}
	}
	s := &BlobStore{root: root, minPartSize: storage.MinPartSize}
	for _, opt := range opts {
		opt(s)
	}
	// Directories moved to the trash by a process that died before it
	// removed them.
	entries, err := os.ReadDir(filepath.Join(root, trashDir))
	if err != nil {
		return nil, fmt.Errorf("new blob store: %w", err)
	}
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(root, trashDir, e.Name())) // garbage either way
	}
	return s, nil
}

// composite is the body of a multipart object: the parts, in order, that
// make up its bytes. They live in parts/<Upload>/.
type composite struct {
	Upload string          `json:"upload"`
	Parts  []compositePart `json:"parts"`
}

type compositePart struct {
	Number int   `json:"n"`
	Size   int64 `json:"size"`
}

func (c *composite) size() int64 {
	var n int64
	for _, p := range c.Parts {
		n += p.Size
	}
	return n
}

// Put implements storage.BlobStore.
func (s *BlobStore) Put(ctx context.Context, key string, size int64, expect digest.Digest, r io.Reader) error {
	if err := s.put(ctx, key, size, expect, r); err != nil {
		return fmt.Errorf("put %s: %w", key, full(err))
	}
	return nil
}

func (s *BlobStore) put(ctx context.Context, key string, size int64, expect digest.Digest, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	if expect != "" {
		if err := expect.Validate(); err != nil {
			return fmt.Errorf("expected digest %q: %w", expect, err)
		}
	}
	final := s.objectPath(key)
	if err := mkdirAll(s.root, filepath.Dir(final)); err != nil {
		return err
	}
	tmp, err := writeTemp(ctx, filepath.Dir(final), dataHeader, size, expect, r)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	_, err = s.commit(tmp, final, "")
	return err
}

// writeTemp writes header and then exactly size bytes of r to a new
// temporary file in dir, verifies them against expect if it is set, and
// fsyncs the file. It returns the file's path; on error nothing is left.
func writeTemp(ctx context.Context, dir, header string, size int64, expect digest.Digest, r io.Reader) (path string, err error) {
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := io.WriteString(f, header); err != nil {
		return "", err
	}
	var w io.Writer = f
	var h hash.Hash
	if expect != "" {
		h = expect.Algorithm().Hash()
		w = io.MultiWriter(f, h)
	}
	if err := copyExact(ctx, w, r, size); err != nil {
		return "", err
	}
	if h != nil {
		if got := digest.NewDigest(expect.Algorithm(), h); got != expect {
			return "", fmt.Errorf("%w: got %s, want %s", storage.ErrDigestMismatch, got, expect)
		}
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// commit renames tmp onto final and makes that durable; visible reports
// whether the rename happened, even if the fsync after it failed. If final
// was a composite other than the one of upload keep, its parts are
// discarded afterwards: nothing refers to them any more.
func (s *BlobStore) commit(tmp, final, keep string) (visible bool, err error) {
	old := s.compositeAt(final)
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return false, err
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return true, err
	}
	if old != nil && old.Upload != keep {
		// The new object is in place; unreferenced parts are only garbage.
		_ = s.discard(filepath.Join(s.root, partsDir, old.Upload))
	}
	return true, nil
}

// discard removes a directory: first moved to the trash, atomically, then
// deleted. It reports only a failure of the move (a missing directory is
// fine): a half-deleted trash entry is garbage, removed on the next start.
func (s *BlobStore) discard(dir string) error {
	trash := filepath.Join(s.root, trashDir, randomHex(8))
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	_ = os.RemoveAll(trash)
	return nil
}

// readObject opens the object file at path. For plain data it returns the
// open file; for a composite, the parsed composite. size is the object's.
func readObject(path string) (f *os.File, c *composite, size int64, err error) {
	f, err = os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, 0, storage.ErrNotFound
	}
	if err != nil {
		return nil, nil, 0, err
	}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("corrupt object file %s: %w", path, err)
	}
	switch string(hdr[:]) {
	case dataHeader:
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, 0, err
		}
		return f, nil, fi.Size() - headerSize, nil
	case compositeHeader:
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxCompositeSize))
		if err != nil {
			return nil, nil, 0, err
		}
		c = new(composite)
		if err := json.Unmarshal(b, c); err != nil {
			return nil, nil, 0, fmt.Errorf("corrupt composite %s: %w", path, err)
		}
		return nil, c, c.size(), nil
	}
	f.Close()
	return nil, nil, 0, fmt.Errorf("corrupt object file %s: unknown header %q", path, hdr[:])
}

// compositeAt returns the composite stored at path, or nil if there is
// none (or it can't be read).
func (s *BlobStore) compositeAt(path string) *composite {
	f, c, _, err := readObject(path)
	if f != nil {
		f.Close()
	}
	if err != nil {
		return nil
	}
	return c
}

// Stat implements storage.BlobStore.
func (s *BlobStore) Stat(ctx context.Context, key string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("stat %s: %w", key, err)
	}
	if err := checkKey(key); err != nil {
		return 0, fmt.Errorf("stat %s: %w", key, err)
	}
	f, _, size, err := readObject(s.objectPath(key))
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", key, err)
	}
	if f != nil {
		f.Close()
	}
	return size, nil
}

// Open implements storage.BlobStore. The reader fails with the ctx's
// error once ctx is done. A reader of a multipart object holds one open
// file per part it spans, so it keeps reading what it opened even if the
// object is replaced or deleted meanwhile, as with a plain file.
func (s *BlobStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.open(ctx, key, offset, length)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return rc, nil
}

func (s *BlobStore) open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	f, c, size, err := readObject(s.objectPath(key))
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > size {
		if f != nil {
			f.Close()
		}
		return nil, fmt.Errorf("offset %d outside object of %d bytes", offset, size)
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	if f != nil {
		return &reader{ctx: ctx, r: io.NewSectionReader(f, headerSize+offset, n), left: n, files: []*os.File{f}}, nil
	}
	return s.openComposite(ctx, c, offset, n)
}

// openComposite opens the parts of c that overlap [offset, offset+n).
func (s *BlobStore) openComposite(ctx context.Context, c *composite, offset, n int64) (io.ReadCloser, error) {
	rd := &reader{ctx: ctx, left: n}
	var sections []io.Reader
	end := offset + n
	var pos int64
	for _, p := range c.Parts {
		start := pos
		pos += p.Size
		if pos <= offset || start >= end {
			continue
		}
		f, err := os.Open(filepath.Join(s.root, partsDir, c.Upload, partName(p.Number)))
		if err != nil {
			rd.Close()
			if errors.Is(err, fs.ErrNotExist) {
				// Deleted or replaced since we read the composite.
				return nil, fmt.Errorf("part %d: %w", p.Number, storage.ErrNotFound)
			}
			return nil, err
		}
		rd.files = append(rd.files, f)
		from, to := max(offset, start)-start, min(end, pos)-start
		sections = append(sections, io.NewSectionReader(f, partHeaderSize+from, to-from))
	}
	rd.r = io.MultiReader(sections...)
	return rd, nil
}

// reader reads an object's bytes, honouring ctx and reporting a file that
// turns out shorter than its object as io.ErrUnexpectedEOF.
type reader struct {
	ctx   context.Context
	r     io.Reader
	left  int64
	files []*os.File
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if errors.Is(err, io.EOF) && r.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *reader) Close() error {
	var errs []error
	for _, f := range r.files {
		errs = append(errs, f.Close())
	}
	r.files = nil
	return errors.Join(errs...)
}

// Delete implements storage.BlobStore.
func (s *BlobStore) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := checkKey(key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	path := s.objectPath(key)
	old := s.compositeAt(path)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if old != nil {
		// The object is gone; unreferenced parts are only garbage.
		_ = s.discard(filepath.Join(s.root, partsDir, old.Upload))
	}
	return nil
}
