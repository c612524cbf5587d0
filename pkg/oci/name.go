package oci

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxRepositoryLength is the longest repository name accepted, in bytes.
// distribution-spec: clients commonly limit name+host to 255.
const MaxRepositoryLength = 255

// maxQuoted bounds how much of a caller's input is echoed in an error
// message, so a hostile request cannot make the error body arbitrarily large.
const maxQuoted = 80

// ValidateRepository checks the distribution-spec name grammar
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)* and the length limit.
// Returns *Error CodeNameInvalid whose message says what is wrong (upper case, "..", empty component, too long, ...).
//
// The grammar is checked by hand rather than with a regexp so that the
// message can name the exact problem; a fuzz test keeps the two equivalent.
func ValidateRepository(name string) error {
	switch {
	case name == "":
		return Errorf(CodeNameInvalid, "repository name must not be empty")
	case len(name) > MaxRepositoryLength:
		return Errorf(CodeNameInvalid, "repository name is %d characters long; the limit is %d", len(name), MaxRepositoryLength)
	case strings.HasPrefix(name, "/"):
		return Errorf(CodeNameInvalid, "repository name %q must not start with '/'", name)
	case strings.HasSuffix(name, "/"):
		return Errorf(CodeNameInvalid, "repository name %q must not end with '/'", name)
	case strings.Contains(name, "//"):
		return Errorf(CodeNameInvalid, "repository name %q has an empty path component (\"//\")", name)
	}
	for i, r := range name {
		switch {
		case isLowerAlnum(r) || r == '.' || r == '_' || r == '-' || r == '/':
		case r >= 'A' && r <= 'Z':
			return Errorf(CodeNameInvalid, "repository name %q must be lower case", name)
		default:
			return Errorf(CodeNameInvalid, "repository name %q contains invalid character %q at offset %d; allowed are a-z, 0-9, '.', '_', '-' and '/'", name, r, i)
		}
	}
	for _, comp := range strings.Split(name, "/") {
		if err := validateComponent(name, comp); err != nil {
			return err
		}
	}
	return nil
}

// validateComponent checks one path component, already known to be non-empty
// and made only of [a-z0-9._-], against [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validateComponent(name, comp string) error {
	first, _ := utf8.DecodeRuneInString(comp)
	last, _ := utf8.DecodeLastRuneInString(comp)
	if !isLowerAlnum(first) || !isLowerAlnum(last) {
		return Errorf(CodeNameInvalid, "repository name %q: path component %q must start and end with a lower-case letter or digit", name, comp)
	}
	// Walk the separator runs between alphanumeric runs.
	for i := 0; i < len(comp); {
		if isLowerAlnum(rune(comp[i])) {
			i++
			continue
		}
		j := i
		for j < len(comp) && !isLowerAlnum(rune(comp[j])) {
			j++
		}
		if err := checkSeparator(name, comp, comp[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// checkSeparator accepts exactly the grammar's separators: ".", "_", "__" or
// one or more "-".
func checkSeparator(name, comp, sep string) error {
	switch {
	case sep == "." || sep == "_" || sep == "__":
		return nil
	case strings.Trim(sep, "-") == "":
		return nil
	case strings.Contains(sep, ".."):
		return Errorf(CodeNameInvalid, "repository name %q: path component %q must not contain \"..\"", name, comp)
	case strings.Trim(sep, "_") == "":
		return Errorf(CodeNameInvalid, "repository name %q: path component %q has more than two '_' in a row", name, comp)
	default:
		return Errorf(CodeNameInvalid, "repository name %q: path component %q has separator %q; use one of '.', '_', '__' or a run of '-'", name, comp, sep)
	}
}

// isLowerAlnum reports whether r is in [a-z0-9].
func isLowerAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
}

// quote returns s quoted for an error message, shortened to maxQuoted bytes
// so that long hostile input is not echoed back in full.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	// Cut on a rune boundary so the quoted text stays valid UTF-8.
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}
