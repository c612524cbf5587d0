package oci

import (
	// go-digest only reports an algorithm as available, and can only hash
	// with it, when the crypto package implementing it is linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// algorithmGrammar is the image-spec grammar for the algorithm part of a
// digest. It tells "an algorithm we do not support" apart from garbage.
var algorithmGrammar = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*$`)

// ParseDigest accepts only sha256 and sha512 digests that go-digest validates (lowercase hex of the right length);
// returns *Error CodeDigestInvalid otherwise ("unsupported digest algorithm", "malformed digest", ...).
//
// sha384 and registered-but-unspecified algorithms are refused: the
// distribution-spec names only sha256 and sha512, and digests become storage
// keys, so accepting more would only create content no client can verify.
func ParseDigest(s string) (digest.Digest, error) {
	if s == "" {
		return "", Errorf(CodeDigestInvalid, "malformed digest: digest must not be empty")
	}
	alg, encoded, ok := strings.Cut(s, ":")
	if !ok || alg == "" || encoded == "" {
		return "", Errorf(CodeDigestInvalid, "malformed digest %s: want <algorithm>:<hex>, e.g. sha256:<64 hex digits>", quote(s))
	}
	a := digest.Algorithm(alg)
	if a != digest.SHA256 && a != digest.SHA512 {
		if !algorithmGrammar.MatchString(alg) {
			return "", Errorf(CodeDigestInvalid, "malformed digest %s: invalid algorithm %s", quote(s), quote(alg))
		}
		return "", Errorf(CodeDigestInvalid, "unsupported digest algorithm %s; supported are sha256 and sha512", quote(alg))
	}
	d := digest.Digest(s)
	if err := d.Validate(); err != nil {
		e := Errorf(CodeDigestInvalid, "malformed digest %s: %s", quote(s), hexProblem(a, encoded, err))
		e.Err = err
		return "", e
	}
	return d, nil
}

// hexProblem describes why go-digest refused the hex part, in terms a client
// can act on.
func hexProblem(a digest.Algorithm, encoded string, err error) string {
	switch {
	case errors.Is(err, digest.ErrDigestInvalidLength):
		return fmt.Sprintf("the %s hex part must be %d characters long, got %d", a, a.Size()*2, len(encoded))
	case strings.ToLower(encoded) != encoded && strings.Trim(strings.ToLower(encoded), "0123456789abcdef") == "":
		return "the hex part must be lower case"
	default:
		return "the hex part must contain only 0-9 and a-f"
	}
}
