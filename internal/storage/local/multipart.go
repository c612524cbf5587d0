package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/skiff-registry/skiff/internal/storage"
)

const (
	// maxPartNumber is S3's.
	maxPartNumber = 10000
	// uploadIDLen is the length of an upload id: 16 random bytes in hex.
	uploadIDLen = 32
	// etagLen is the length of a part's ETag: 8 random bytes in hex. A
	// fresh one per upload makes a re-uploaded part's ETag differ.
	etagLen = 16
	// Every part file starts with partHeader and its ETag, so replacing a
	// part is one rename and the ETag can't get out of step with the bytes.
	partHeader     = "skiffP1\n"
	partHeaderSize = headerSize + etagLen
	// keyFile in an upload's directory holds the key it was created for.
	keyFile = "key"
)

// partName is the file name of part n; zero-padded so a listing sorts.
func partName(n int) string {
	return fmt.Sprintf("%05d", n)
}

// CreateMultipart implements storage.BlobStore.
func (s *BlobStore) CreateMultipart(ctx context.Context, key string) (string, error) {
	id, err := s.createMultipart(ctx, key)
	if err != nil {
		return "", fmt.Errorf("create multipart %s: %w", key, full(err))
	}
	return id, nil
}

func (s *BlobStore) createMultipart(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := checkKey(key); err != nil {
		return "", err
	}
	id := randomHex(uploadIDLen / 2)
	dir := s.uploadDir(id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return "", err
	}
	tmp, err := writeTemp(ctx, dir, "", int64(len(key)), "", strings.NewReader(key))
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, filepath.Join(dir, keyFile)); err != nil {
		return "", err
	}
	return id, syncDir(dir)
}

func (s *BlobStore) uploadDir(id string) string {
	return filepath.Join(s.root, multipartDir, id)
}

// checkUpload returns the directory of upload id to key, or ErrNotFound if
// there is no such upload (never was, completed, aborted, other key).
func (s *BlobStore) checkUpload(key, id string) (string, error) {
	if !isHex(id, uploadIDLen) {
		return "", fmt.Errorf("upload %q: %w", id, storage.ErrNotFound)
	}
	dir := s.uploadDir(id)
	b, err := os.ReadFile(filepath.Join(dir, keyFile))
	if errors.Is(err, fs.ErrNotExist) || err == nil && string(b) != key {
		return "", fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	return dir, nil
}

// UploadPart implements storage.BlobStore.
func (s *BlobStore) UploadPart(ctx context.Context, key, uploadID string, n int, size int64, r io.Reader) (storage.Part, error) {
	p, err := s.uploadPart(ctx, key, uploadID, n, size, r)
	if err != nil {
		return storage.Part{}, fmt.Errorf("upload part %d of %s: %w", n, key, full(err))
	}
	return p, nil
}

func (s *BlobStore) uploadPart(ctx context.Context, key, id string, n int, size int64, r io.Reader) (storage.Part, error) {
	if err := ctx.Err(); err != nil {
		return storage.Part{}, err
	}
	if err := checkKey(key); err != nil {
		return storage.Part{}, err
	}
	if n < 1 || n > maxPartNumber {
		return storage.Part{}, fmt.Errorf("part number %d outside 1..%d", n, maxPartNumber)
	}
	if size < 0 {
		return storage.Part{}, fmt.Errorf("negative size %d", size)
	}
	dir, err := s.checkUpload(key, id)
	if err != nil {
		return storage.Part{}, err
	}
	etag := randomHex(etagLen / 2)
	tmp, err := writeTemp(ctx, dir, partHeader+etag, size, "", r)
	if errors.Is(err, fs.ErrNotExist) {
		// Completed or aborted meanwhile.
		return storage.Part{}, fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Part{}, err
	}
	if err := ctx.Err(); err != nil {
		_ = os.Remove(tmp)
		return storage.Part{}, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, partName(n))); err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, fs.ErrNotExist) {
			return storage.Part{}, fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
		}
		return storage.Part{}, err
	}
	if err := syncDir(dir); err != nil {
		return storage.Part{}, err
	}
	return storage.Part{Number: n, ETag: etag, Size: size}, nil
}

// CompleteMultipart implements storage.BlobStore. The object it writes is
// a small composite naming the part files; no byte is copied.
func (s *BlobStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) error {
	if err := s.completeMultipart(ctx, key, uploadID, parts); err != nil {
		return fmt.Errorf("complete multipart %s: %w", key, full(err))
	}
	return nil
}

func (s *BlobStore) completeMultipart(ctx context.Context, key, id string, parts []storage.Part) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	dir, err := s.checkUpload(key, id)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return errors.New("no parts")
	}
	for i, p := range parts {
		if p.Number < 1 || p.Number > maxPartNumber || i > 0 && p.Number <= parts[i-1].Number {
			return fmt.Errorf("part numbers must ascend within 1..%d, got %d after %d", maxPartNumber, p.Number, parts[max(i-1, 0)].Number)
		}
	}
	if _, err := verifyParts(dir, parts, s.minPartSize); err != nil {
		return err
	}
	final := s.objectPath(key)
	if err := mkdirAll(s.root, filepath.Dir(final)); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Claim the upload: moving its directory is atomic, so of two racing
	// completions (or a completion and an abort) exactly one wins, and a
	// later abort can't touch parts that now belong to an object. From here
	// on ctx is ignored: giving up halfway would lose the upload.
	owned := filepath.Join(s.root, partsDir, id)
	if err := os.Rename(dir, owned); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
		}
		return err
	}
	if visible, err := s.finishComplete(owned, final, id, parts); err != nil {
		if !visible {
			// Hand the upload back so it can be completed or aborted later.
			if os.Rename(owned, dir) == nil {
				_ = syncDir(filepath.Dir(dir))
			}
		}
		return err
	}
	return nil
}

// finishComplete writes the composite of an upload whose directory is
// already owned, then drops the files it does not name. visible reports
// whether the composite was renamed into place: from then on the parts
// belong to it, whatever else fails.
func (s *BlobStore) finishComplete(owned, final, id string, parts []storage.Part) (visible bool, err error) {
	if err := syncDir(filepath.Join(s.root, multipartDir)); err != nil {
		return false, err
	}
	if err := syncDir(filepath.Join(s.root, partsDir)); err != nil {
		return false, err
	}
	// Again, now that no UploadPart can change the directory.
	sizes, err := verifyParts(owned, parts, s.minPartSize)
	if err != nil {
		return false, err
	}
	c := composite{Upload: id, Parts: make([]compositePart, len(parts))}
	keep := map[string]bool{}
	for i, p := range parts {
		c.Parts[i] = compositePart{Number: p.Number, Size: sizes[i]}
		keep[partName(p.Number)] = true
	}
	b, err := json.Marshal(c)
	if err != nil {
		return false, err
	}
	tmp, err := writeTemp(context.Background(), filepath.Dir(final), compositeHeader, int64(len(b)), "", bytes.NewReader(b))
	if err != nil {
		return false, err
	}
	if visible, err := s.commit(tmp, final, id); err != nil {
		return visible, err
	}
	// Replaced parts, unnamed parts and the key file are garbage now.
	entries, err := os.ReadDir(owned)
	if err == nil {
		for _, e := range entries {
			if !keep[e.Name()] {
				_ = os.Remove(filepath.Join(owned, e.Name()))
			}
		}
	}
	return true, nil
}

// verifyParts checks that every listed part is the current upload of its
// number (ErrConflict otherwise, like S3's InvalidPart) and that all but
// the last reach minPart, like S3's EntityTooSmall. It returns the parts'
// sizes.
func verifyParts(dir string, parts []storage.Part, minPart int64) ([]int64, error) {
	sizes := make([]int64, len(parts))
	for i, p := range parts {
		size, etag, err := readPartHeader(filepath.Join(dir, partName(p.Number)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("part %d was not uploaded: %w", p.Number, storage.ErrConflict)
		}
		if err != nil {
			return nil, err
		}
		if etag != p.ETag {
			return nil, fmt.Errorf("part %d has ETag %s, not %q: %w", p.Number, etag, p.ETag, storage.ErrConflict)
		}
		if i < len(parts)-1 && size < minPart {
			return nil, fmt.Errorf("part %d has %d bytes, less than the minimum %d", p.Number, size, minPart)
		}
		sizes[i] = size
	}
	return sizes, nil
}

// readPartHeader returns the data size and ETag of the part file at path.
func readPartHeader(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	var hdr [partHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:headerSize]) != partHeader {
		return 0, "", fmt.Errorf("corrupt part file %s", path)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	return fi.Size() - partHeaderSize, string(hdr[headerSize:]), nil
}

// AbortMultipart implements storage.BlobStore.
func (s *BlobStore) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("abort multipart %s: %w", key, err)
	}
	if err := checkKey(key); err != nil {
		return fmt.Errorf("abort multipart %s: %w", key, err)
	}
	dir, err := s.checkUpload(key, uploadID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("abort multipart %s: %w", key, err)
	}
	if err := s.discard(dir); err != nil {
		return fmt.Errorf("abort multipart %s: %w", key, err)
	}
	return nil
}
