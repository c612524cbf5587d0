package copier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// Docker buildx's attestation manifests sit in an index beside the images
// they describe, with the platform unknown/unknown and these annotations
// naming the image.
const (
	annotationReferenceType   = "vnd.docker.reference.type"
	annotationReferenceDigest = "vnd.docker.reference.digest"
)

// choose returns the children of an index to copy: all of them without
// Platforms; else those of a chosen platform, those without a platform
// (nothing says they are optional), and buildx attestations of chosen
// images. It fails if no child has a chosen platform.
func (c *Copier) choose(children []v1.Descriptor) ([]v1.Descriptor, error) {
	if len(c.opts.Platforms) == 0 {
		return children, nil
	}
	var out []v1.Descriptor
	picked := map[string]bool{}
	matched := false
	for _, ch := range children {
		if ch.Platform == nil || ch.Annotations[annotationReferenceType] != "" {
			continue
		}
		if c.wanted(ch.Platform) {
			out = append(out, ch)
			picked[ch.Digest.String()] = true
			matched = true
		}
	}
	for _, ch := range children {
		switch {
		case ch.Annotations[annotationReferenceType] != "":
			if picked[ch.Annotations[annotationReferenceDigest]] {
				out = append(out, ch)
			}
		case ch.Platform == nil:
			out = append(out, ch)
		}
	}
	if !matched {
		return nil, fmt.Errorf("none of its %d children is for %s (it has %s)", len(children), platformList(c.opts.Platforms), childPlatforms(children))
	}
	return out, nil
}

// wanted reports whether p is one of the chosen platforms (as a policy
// matches them: a platform without a variant matches every variant).
func (c *Copier) wanted(p *v1.Platform) bool {
	got := toSpec(p)
	for _, want := range c.opts.Platforms {
		if oci.PlatformMatches(want, got) {
			return true
		}
	}
	return false
}

// unmatched lists the chosen platforms no child of an index has.
func unmatched(want []ocispec.Platform, children []v1.Descriptor) []string {
	var out []string
	for _, w := range want {
		found := false
		for _, ch := range children {
			found = found || (ch.Platform != nil && oci.PlatformMatches(w, toSpec(ch.Platform)))
		}
		if !found {
			out = append(out, oci.PlatformString(&w))
		}
	}
	return out
}

func toSpec(p *v1.Platform) ocispec.Platform {
	return ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
}

func platformList(ps []ocispec.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, oci.PlatformString(&p))
	}
	return strings.Join(s, ", ")
}

func childPlatforms(children []v1.Descriptor) string {
	var s []string
	for _, ch := range children {
		if ch.Platform != nil && ch.Annotations[annotationReferenceType] == "" {
			sp := toSpec(ch.Platform)
			s = append(s, oci.PlatformString(&sp))
		}
	}
	if len(s) == 0 {
		return "no platforms"
	}
	return strings.Join(s, ", ")
}

// countChildren and countAbsent count an index's children, and those a
// partial copy leaves out.
func countChildren(raw []byte) int {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return 0
	}
	return len(idx.Manifests)
}

func countAbsent(raw []byte, chosen []v1.Descriptor) int {
	return countChildren(raw) - len(chosen)
}

// rawManifest is a manifest written as its source has it, byte for byte.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// isImageManifest reports whether raw, whose media type its source did
// not say, has the fields of an image manifest.
func isImageManifest(raw []byte) bool {
	var m struct {
		Config *json.RawMessage `json:"config"`
	}
	return json.Unmarshal(raw, &m) == nil && m.Config != nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
