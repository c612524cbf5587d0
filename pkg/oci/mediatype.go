package oci

import (
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types the registry knows about. Only the first four are
// stored; schema1 is named so that it can be refused with a clear message.
const (
	MediaTypeImageManifest       = v1.MediaTypeImageManifest
	MediaTypeImageIndex          = v1.MediaTypeImageIndex
	MediaTypeDockerManifest      = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// MediaTypeDockerForeignLayer is Docker's non-distributable ("foreign")
// layer, used by Windows base images whose layers live on Microsoft's servers.
const MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

// MaxManifestSize is the largest manifest body accepted, in bytes: 4 MiB, as
// distribution and most registries, so pushes that work elsewhere work here
// and one request cannot make the registry buffer an unbounded body.
const MaxManifestSize = 4 << 20

// MaxDescriptors caps the descriptors one manifest may name (config and
// layers, or an index's children): each is looked up when the manifest is
// pushed, so the cap bounds that work. Real images have at most about 128
// layers (overlay's limit) and indexes a few dozen children; 4 MiB would
// otherwise hold about 40,000.
const MaxDescriptors = 10_000

// SupportedManifestMediaTypes returns the manifest media types ParseManifest
// accepts, for error messages and Accept-header negotiation.
func SupportedManifestMediaTypes() []string {
	return []string{MediaTypeImageManifest, MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerManifestList}
}

// IsIndexMediaType reports whether mt is an OCI index or Docker manifest list.
func IsIndexMediaType(mt string) bool {
	return mt == MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsImageMediaType reports whether mt is an OCI image manifest or Docker schema2 manifest.
func IsImageMediaType(mt string) bool {
	return mt == MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// isSchema1MediaType reports whether mt is a Docker schema1 manifest type.
func isSchema1MediaType(mt string) bool {
	return mt == MediaTypeDockerSchema1 || mt == MediaTypeDockerSchema1Signed
}

// IsNonDistributable reports the spec's non-distributable layer media types (OCI ...nondistributable... and Docker foreign layers), which may be absent from the registry.
func IsNonDistributable(mt string) bool {
	// Prefixes rather than the image-spec constants: those are deprecated,
	// and a prefix also covers compressions the constants don't list.
	return strings.HasPrefix(mt, "application/vnd.oci.image.layer.nondistributable.") ||
		strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.foreign.")
}

// PlatformString formats os/arch[/variant] plus ":"+os.version when set, e.g. "linux/arm64/v8"; "" for nil.
func PlatformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	if p.OSVersion != "" {
		s += ":" + p.OSVersion
	}
	return s
}

// baseMediaType strips parameters such as "; charset=utf-8" from a
// Content-Type and lower-cases it, since HTTP media types are
// case-insensitive while manifest media types are compared exactly.
func baseMediaType(contentType string) string {
	base, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(base))
}

// validMediaType reports whether mt is shaped type/subtype, each an RFC 6838
// restricted-name: a letter or digit, then up to 126 of [A-Za-z0-9!#$&^_.+-].
// Parameters are not allowed in descriptor media types.
func validMediaType(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && restrictedName(typ) && restrictedName(sub)
}

// restrictedName checks one half of a media type (RFC 6838 section 4.2).
func restrictedName(s string) bool {
	if len(s) == 0 || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if alnum {
			continue
		}
		if i == 0 || !strings.ContainsRune("!#$&-^_.+", rune(c)) {
			return false
		}
	}
	return true
}
