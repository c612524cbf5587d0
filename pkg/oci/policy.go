package oci

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// IndexChildren says which manifests an image index names must exist in
// the repository when the index is pushed.
type IndexChildren string

// Index children modes.
const (
	// IndexChildrenAll requires every child (the default, what the spec's
	// strict registries do).
	IndexChildrenAll IndexChildren = "all"
	// IndexChildrenNone lets any child be absent: a sparse index.
	IndexChildrenNone IndexChildren = "none"
	// IndexChildrenPlatforms requires only the children of the listed
	// platforms, and children without a platform.
	IndexChildrenPlatforms IndexChildren = "platforms"
)

// ImageBlobs says whether an image manifest's config and layers must exist.
type ImageBlobs string

// Image blob modes.
const (
	// ImageBlobsRequired requires them, except non-distributable layers.
	ImageBlobsRequired ImageBlobs = "required"
	// ImageBlobsOptional lets them be absent: a manifest-only mirror.
	ImageBlobsOptional ImageBlobs = "optional"
)

// Policy is the index policy of the repositories under Prefix. A prefix
// covers the repository of that exact name and everything below it
// ("mirror" and "mirror/" both cover "mirror/alpine"); the longest
// matching prefix wins.
type Policy struct {
	Prefix        string        `json:"prefix"`
	IndexChildren IndexChildren `json:"indexChildren"`
	// Platforms lists the required platforms under IndexChildrenPlatforms,
	// as os/arch[/variant][:os.version].
	Platforms  []string   `json:"platforms,omitempty"`
	ImageBlobs ImageBlobs `json:"imageBlobs"`
}

// DefaultPolicy is what repositories without a policy get: strict.
func DefaultPolicy() Policy {
	return Policy{IndexChildren: IndexChildrenAll, ImageBlobs: ImageBlobsRequired}
}

// NormalizePrefix validates a policy prefix and returns its canonical
// form, without a trailing slash.
func NormalizePrefix(prefix string) (string, error) {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		return "", fmt.Errorf("policy prefix %s is empty; name a repository or a namespace such as mirror/", quote(prefix))
	}
	if err := ValidateRepository(p); err != nil {
		msg := err.Error()
		var oe *Error
		if errors.As(err, &oe) {
			msg = oe.Message
		}
		return "", fmt.Errorf("policy prefix %s is not a repository name or namespace: %s", quote(prefix), msg)
	}
	return p, nil
}

// Validate checks p and returns it in canonical form: prefix normalized,
// empty modes defaulted, platforms parsed, sorted and deduplicated.
func (p Policy) Validate() (Policy, error) {
	prefix, err := NormalizePrefix(p.Prefix)
	if err != nil {
		return p, err
	}
	p.Prefix = prefix
	if p.IndexChildren == "" {
		p.IndexChildren = IndexChildrenAll
	}
	if p.ImageBlobs == "" {
		p.ImageBlobs = ImageBlobsRequired
	}
	switch p.IndexChildren {
	case IndexChildrenAll, IndexChildrenNone:
		if len(p.Platforms) > 0 {
			return p, fmt.Errorf("platforms are only allowed with index-children=platforms, not %q", p.IndexChildren)
		}
	case IndexChildrenPlatforms:
		if len(p.Platforms) == 0 {
			return p, fmt.Errorf("index-children=platforms needs at least one platform, e.g. linux/amd64")
		}
		canon := make([]string, 0, len(p.Platforms))
		for _, s := range p.Platforms {
			pl, err := ParsePlatform(s)
			if err != nil {
				return p, err
			}
			canon = append(canon, PlatformString(&pl))
		}
		slices.Sort(canon)
		p.Platforms = slices.Compact(canon)
	default:
		return p, fmt.Errorf("unknown index-children mode %q (want all, none or platforms)", p.IndexChildren)
	}
	switch p.ImageBlobs {
	case ImageBlobsRequired, ImageBlobsOptional:
	default:
		return p, fmt.Errorf("unknown image-blobs mode %q (want required or optional)", p.ImageBlobs)
	}
	return p, nil
}

// ParsePlatform parses os/arch[/variant][:os.version], e.g. linux/arm64/v8
// or windows/amd64:10.0.17763.
func ParsePlatform(s string) (v1.Platform, error) {
	spec, osVersion, _ := strings.Cut(s, ":")
	parts := strings.Split(spec, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return v1.Platform{}, fmt.Errorf("platform %s is not os/arch[/variant][:os.version]", quote(s))
	}
	for _, p := range parts {
		if !platformToken(p) {
			return v1.Platform{}, fmt.Errorf("platform %s has an empty or invalid component %s", quote(s), quote(p))
		}
	}
	pl := v1.Platform{OS: parts[0], Architecture: parts[1], OSVersion: osVersion}
	if len(parts) == 3 {
		pl.Variant = parts[2]
	}
	if strings.Contains(s, ":") && (osVersion == "" || strings.ContainsAny(osVersion, "/: ")) {
		return v1.Platform{}, fmt.Errorf("platform %s has an empty or invalid os.version", quote(s))
	}
	return pl, nil
}

func platformToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// RulePrefix is the prefix p covers (internal/policy stores it there).
func (p Policy) RulePrefix() string { return p.Prefix }

// WithPrefix returns p with its prefix replaced.
func (p Policy) WithPrefix(prefix string) Policy {
	p.Prefix = prefix
	return p
}

// Covers reports whether p's prefix covers repo.
func (p Policy) Covers(repo string) bool {
	return repo == p.Prefix || strings.HasPrefix(repo, p.Prefix+"/")
}

// RequiresChild reports whether an index child of the given platform must
// be present under p.
func (p Policy) RequiresChild(platform *v1.Platform) bool {
	switch p.IndexChildren {
	case IndexChildrenNone:
		return false
	case IndexChildrenPlatforms:
		if platform == nil {
			return true // without a platform we cannot tell it is optional
		}
		for _, s := range p.Platforms {
			want, err := ParsePlatform(s)
			if err == nil && PlatformMatches(want, *platform) {
				return true
			}
		}
		return false
	}
	return true
}

// PlatformMatches: os and architecture must be equal; a variant or
// os.version in want must be equal too. arm64 without a variant is v8.
func PlatformMatches(want, got v1.Platform) bool {
	if want.OS != got.OS || want.Architecture != got.Architecture {
		return false
	}
	if want.Variant != "" && normVariant(want) != normVariant(got) {
		return false
	}
	return want.OSVersion == "" || want.OSVersion == got.OSVersion
}

func normVariant(p v1.Platform) string {
	if p.Architecture == "arm64" && p.Variant == "" {
		return "v8"
	}
	return p.Variant
}

// String describes p the way the CLI flags spell it.
func (p Policy) String() string {
	s := "index-children=" + string(p.IndexChildren)
	if len(p.Platforms) > 0 {
		s += " platforms=" + strings.Join(p.Platforms, ",")
	}
	return s + " image-blobs=" + string(p.ImageBlobs)
}

// ResolvePolicy returns the policy of repo among ps: the one with the
// longest prefix covering it, or DefaultPolicy.
func ResolvePolicy(ps []Policy, repo string) Policy {
	best := DefaultPolicy()
	for _, p := range ps {
		if p.Covers(repo) && len(p.Prefix) >= len(best.Prefix) {
			best = p
		}
	}
	return best
}

// The operating systems and architectures of Go's GOOS and GOARCH, which
// the image spec's platform fields take their values from.
var (
	knownOS   = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"}
	knownArch = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "sparc64", "wasm"}
)

// ParseKnownPlatform is ParsePlatform for a platform someone asks for by
// name: its os and architecture must be ones the image spec knows, so a
// typo (linux/amd46) is an error rather than a selection of nothing.
func ParseKnownPlatform(s string) (v1.Platform, error) {
	p, err := ParsePlatform(s)
	if err != nil {
		return p, err
	}
	if !slices.Contains(knownOS, p.OS) {
		return p, fmt.Errorf("platform %s: unknown operating system %s (known: %s)", quote(s), quote(p.OS), strings.Join(knownOS, ", "))
	}
	if !slices.Contains(knownArch, p.Architecture) {
		return p, fmt.Errorf("platform %s: unknown architecture %s (known: %s)", quote(s), quote(p.Architecture), strings.Join(knownArch, ", "))
	}
	return p, nil
}
