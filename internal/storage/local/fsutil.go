package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/skiff-registry/skiff/internal/storage"
)

// full marks an error of a write that found no space (ENOSPC, or EDQUOT
// for a quota) with storage.ErrFull, so callers can tell a full disk from
// other failures.
func full(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", storage.ErrFull, err)
	}
	return err
}

// copyBufSize bounds the memory one copy holds, whatever the blob size.
const copyBufSize = 128 << 10

// maxNoProgress is how many (0, nil) reads in a row a copy tolerates.
const maxNoProgress = 100

// errTooLong reports a reader that yields more bytes than announced.
var errTooLong = errors.New("reader yields more bytes than the size given")

// copyExact copies exactly size bytes from r to w, checking ctx between
// buffers, and then makes sure r has nothing more to give: a short reader
// fails with io.ErrUnexpectedEOF, a long one with errTooLong.
func copyExact(ctx context.Context, w io.Writer, r io.Reader, size int64) error {
	buf := make([]byte, min(copyBufSize, size+1))
	var done int64
	idle := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := buf
		if rest := size - done; rest < int64(len(buf)) {
			// One byte more than needed at the end tells a long reader apart.
			chunk = buf[:rest+1]
		}
		n, err := r.Read(chunk)
		if int64(n) > size-done {
			return fmt.Errorf("%w: more than %d bytes", errTooLong, size)
		}
		if n > 0 {
			idle = 0
			if _, werr := w.Write(chunk[:n]); werr != nil {
				return werr
			}
			done += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF):
			if done < size {
				return fmt.Errorf("got %d of %d bytes: %w", done, size, io.ErrUnexpectedEOF)
			}
			return nil
		case err != nil:
			return err
		case n == 0:
			if idle++; idle > maxNoProgress {
				return io.ErrNoProgress
			}
		}
	}
}

// syncDir makes a directory's entries (a rename, a new file or directory)
// durable: fsync on the file alone does not persist its name.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirAll creates dir and its missing parents below root (which exists),
// syncing each parent, so a crash can't lose the directory of a file that
// was already renamed into place.
func mkdirAll(root, dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if len(parent) > len(root) {
		if err := mkdirAll(root, parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Created concurrently; its creator may not have synced the
			// parent yet.
			return syncDir(parent)
		}
		return err
	}
	return syncDir(parent)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand docs)
	return hex.EncodeToString(b)
}

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
