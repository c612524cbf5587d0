package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Retention is the retention rule of the repositories under Prefix (the
// longest covering prefix wins, as for policies). A repository without
// one keeps everything its tags and untagged manifests hold.
//
// What a rule never deletes: a manifest a kept tag names, one a kept
// index names (whatever the index policy lets be absent), a referrer or
// cosign digest tag of a kept manifest, anything pushed or used within
// the collector's grace period. Referrers and digest tags go with their
// subject.
type Retention struct {
	Prefix string `json:"prefix"`
	// UntaggedAfter deletes untagged manifests not pushed or used for
	// this long (zero: untagged manifests are kept).
	UntaggedAfter Duration `json:"untaggedAfter,omitempty"`
	// KeepTags keeps, of the tags each pattern matches, the Last most
	// recently pointed; the other tags it matches are deleted, and the
	// manifests only they kept with them. A tag no pattern matches is
	// kept; one that several match is kept if any of them keeps it.
	KeepTags []TagKeep `json:"keepTags,omitempty"`
}

// TagKeep keeps the Last most recently pointed tags matching Pattern.
type TagKeep struct {
	// Pattern is an RE2 regular expression the whole tag must match.
	Pattern string `json:"pattern"`
	Last    int    `json:"last"`
}

// Limits of a retention rule: it is read on every collection and stored
// as one settings item.
const (
	maxTagKeeps      = 20
	maxTagPattern    = 256
	maxKeepLast      = 100_000
	maxUntaggedAfter = 100 * 365 * 24 * time.Hour
)

// Duration is a time.Duration that JSON and the CLI spell as 30d, 12h or
// 1h30m.
type Duration time.Duration

// ParseDuration reads a duration: Go's syntax (12h, 90m) or whole days
// (30d).
func ParseDuration(s string) (Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > int(maxUntaggedAfter/(24*time.Hour)) {
			return 0, fmt.Errorf("duration %s is not a number of days such as 30d", quote(s))
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %s is not one such as 30d, 12h or 90m", quote(s))
	}
	return Duration(d), nil
}

// String spells whole days as such (30d), anything else as Go does.
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string such as "30d".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration is a string such as "30d" or "12h"`)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Validate checks r and returns it in canonical form (prefix normalized).
func (r Retention) Validate() (Retention, error) {
	prefix, err := NormalizePrefix(r.Prefix)
	if err != nil {
		return r, err
	}
	r.Prefix = prefix
	switch {
	case r.UntaggedAfter < 0:
		return r, fmt.Errorf("untaggedAfter %s is negative", r.UntaggedAfter)
	case time.Duration(r.UntaggedAfter) > maxUntaggedAfter:
		return r, fmt.Errorf("untaggedAfter %s is longer than 100 years", r.UntaggedAfter)
	case r.UntaggedAfter == 0 && len(r.KeepTags) == 0:
		return r, errors.New("a retention rule needs untaggedAfter (e.g. 30d) or keepTags (e.g. the last 10 tags matching v.*), or both")
	case len(r.KeepTags) > maxTagKeeps:
		return r, fmt.Errorf("a retention rule has %d keepTags; the limit is %d", len(r.KeepTags), maxTagKeeps)
	}
	seen := map[string]bool{}
	for i, k := range r.KeepTags {
		switch {
		case k.Pattern == "":
			return r, fmt.Errorf("keepTags %d has an empty pattern; use .* for every tag", i+1)
		case len(k.Pattern) > maxTagPattern:
			return r, fmt.Errorf("keepTags %d: the pattern is %d bytes long; the limit is %d", i+1, len(k.Pattern), maxTagPattern)
		case seen[k.Pattern]:
			return r, fmt.Errorf("keepTags %d: pattern %s is given twice", i+1, quote(k.Pattern))
		case k.Last < 1 || k.Last > maxKeepLast:
			return r, fmt.Errorf("keepTags %d (pattern %s): last is %d; keep between 1 and %d tags", i+1, quote(k.Pattern), k.Last, maxKeepLast)
		}
		if _, err := regexp.Compile(k.Pattern); err != nil {
			return r, fmt.Errorf("keepTags %d: pattern %s is not a regular expression: %s", i+1, quote(k.Pattern), strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		seen[k.Pattern] = true
	}
	return r, nil
}

// RulePrefix is the prefix r covers (internal/policy stores it there).
func (r Retention) RulePrefix() string { return r.Prefix }

// WithPrefix returns r with its prefix replaced.
func (r Retention) WithPrefix(prefix string) Retention {
	r.Prefix = prefix
	return r
}

// Covers reports whether r's prefix covers repo.
func (r Retention) Covers(repo string) bool {
	return repo == r.Prefix || strings.HasPrefix(repo, r.Prefix+"/")
}

// Matcher compiles the pattern, anchored to the whole tag; the pattern
// must be valid (Validate).
func (k TagKeep) Matcher() *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + k.Pattern + `)$`)
}

// String describes r the way the CLI flags spell it.
func (r Retention) String() string {
	var parts []string
	if r.UntaggedAfter > 0 {
		parts = append(parts, "untagged-after="+r.UntaggedAfter.String())
	}
	for _, k := range r.KeepTags {
		parts = append(parts, fmt.Sprintf("keep-tags=%s=%d", k.Pattern, k.Last))
	}
	return strings.Join(parts, " ")
}

// ResolveRetention returns the rule of repo among rs, the one with the
// longest prefix covering it, and false if none does.
func ResolveRetention(rs []Retention, repo string) (Retention, bool) {
	var best Retention
	found := false
	for _, r := range rs {
		if r.Covers(repo) && (!found || len(r.Prefix) > len(best.Prefix)) {
			best, found = r, true
		}
	}
	return best, found
}

// digestTagRE matches cosign's tags for a subject: <alg>-<hex>, alone (the
// referrers tag schema) or with a suffix such as .sig, .att or .sbom.
var digestTagRE = regexp.MustCompile(`^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(\.[A-Za-z0-9_.-]+)?$`)

// DigestTagSubject returns the subject a digest tag (sha256-<hex>.sig)
// names, and false for any other tag.
func DigestTagSubject(tag string) (digest.Digest, bool) {
	m := digestTagRE.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(m[1]), m[2])
	return d, d.Validate() == nil
}
