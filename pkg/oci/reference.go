package oci

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// MaxTagLength is the longest tag accepted, from the distribution-spec tag
// grammar [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
const MaxTagLength = 128

// ValidateTag checks [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}; returns *Error CodeManifestInvalid with a clear message.
func ValidateTag(tag string) error {
	switch {
	case tag == "":
		return Errorf(CodeManifestInvalid, "tag must not be empty")
	case len(tag) > MaxTagLength:
		return Errorf(CodeManifestInvalid, "tag %s is %d characters long; the limit is %d", quote(tag), len(tag), MaxTagLength)
	}
	for i, r := range tag {
		if i == 0 && (r == '.' || r == '-') {
			return Errorf(CodeManifestInvalid, "tag %s must start with a letter, digit or '_'", quote(tag))
		}
		if !isTagChar(r) {
			return Errorf(CodeManifestInvalid, "tag %s contains invalid character %q at offset %d; allowed are a-z, A-Z, 0-9, '_', '.' and '-'", quote(tag), r, i)
		}
	}
	return nil
}

// isTagChar reports whether r is in [a-zA-Z0-9._-].
func isTagChar(r rune) bool {
	return isLowerAlnum(r) || (r >= 'A' && r <= 'Z') || r == '_' || r == '.' || r == '-'
}

// Reference is a tag or a digest (exactly one set), as in the <reference>
// part of /v2/<name>/manifests/<reference>.
type Reference struct {
	Tag    string
	Digest digest.Digest
}

// ParseReference parses s as a digest if it contains ':' (errors are
// DIGEST_INVALID), otherwise as a tag (errors from ValidateTag). A ':' can
// never appear in a tag, so the split is unambiguous.
func ParseReference(s string) (Reference, error) {
	if strings.Contains(s, ":") {
		d, err := ParseDigest(s)
		if err != nil {
			return Reference{}, err
		}
		return Reference{Digest: d}, nil
	}
	if err := ValidateTag(s); err != nil {
		return Reference{}, err
	}
	return Reference{Tag: s}, nil
}

// String returns the digest when set, else the tag.
func (r Reference) String() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// IsDigest reports whether r refers to content by digest.
func (r Reference) IsDigest() bool {
	return r.Digest != ""
}
