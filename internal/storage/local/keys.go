package local

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// errInvalidKey marks a key the store refuses to map onto a path.
var errInvalidKey = errors.New("invalid key")

const (
	// maxKeyLen is S3's limit, so a key accepted here works on S3 too.
	maxKeyLen = 1024
	// maxComponentLen keeps a component plus objectSuffix within the
	// 255-byte file name limit of common file systems.
	maxComponentLen = 255 - len(objectSuffix)
	// objectSuffix ends the file name of every object. It is outside the
	// key alphabet, so the file for key "a/b" never collides with the
	// directory that holds key "a/b/c".
	objectSuffix = "@"
	// tempPattern names temporary files; it starts with a byte outside the
	// key alphabet, so it can't collide with a key's directory either.
	tempPattern = "@tmp-*"
)

// checkKey accepts keys of [a-z0-9/._-] whose slash-separated components
// are neither empty, "." nor "..": such a key can only name a path under
// the store's directory.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("%w %q: length must be 1 to %d bytes", errInvalidKey, key, maxKeyLen)
	}
	for i := range len(key) {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '/' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: byte %q is outside [a-z0-9/._-]", errInvalidKey, key, c)
		}
	}
	for comp := range strings.SplitSeq(key, "/") {
		switch {
		case comp == "" || comp == "." || comp == "..":
			return fmt.Errorf("%w %q: empty, . or .. component", errInvalidKey, key)
		case len(comp) > maxComponentLen:
			return fmt.Errorf("%w %q: component longer than %d bytes", errInvalidKey, key, maxComponentLen)
		}
	}
	return nil
}

// objectPath maps a checked key onto its file.
func (s *BlobStore) objectPath(key string) string {
	return filepath.Join(s.root, objectsDir, filepath.FromSlash(key)) + objectSuffix
}
