package oci

import (
	"errors"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// validateDescriptor checks one descriptor of a manifest; pos names it in
// messages ("config", "layers[2]", "subject"). Digest problems are reported
// as MANIFEST_INVALID, not DIGEST_INVALID, because the spec reserves
// DIGEST_INVALID for content that does not match the digest it was pushed
// under; the DIGEST_INVALID error is kept as the cause.
func validateDescriptor(pos string, d *v1.Descriptor) error {
	switch {
	case d.MediaType == "":
		return Errorf(CodeManifestInvalid, "%s: mediaType is required", pos)
	case !validMediaType(d.MediaType):
		return Errorf(CodeManifestInvalid, "%s: mediaType %s is not a media type of the form type/subtype (RFC 6838)", pos, quote(d.MediaType))
	case d.ArtifactType != "" && !validMediaType(d.ArtifactType):
		return Errorf(CodeManifestInvalid, "%s: artifactType %s is not a media type of the form type/subtype (RFC 6838)", pos, quote(d.ArtifactType))
	case d.Size < 0:
		return Errorf(CodeManifestInvalid, "%s: size must not be negative, got %d", pos, d.Size)
	}
	if d.Digest == "" {
		return Errorf(CodeManifestInvalid, "%s: digest is required", pos)
	}
	if _, err := ParseDigest(string(d.Digest)); err != nil {
		msg := err.Error()
		var de *Error
		if errors.As(err, &de) {
			msg = de.Message
		}
		e := Errorf(CodeManifestInvalid, "%s: %s", pos, msg)
		e.Err = err
		return e
	}
	if err := validatePlatform(pos, d.Platform); err != nil {
		return err
	}
	// Embedded data is served in place of the blob, so it must be exactly
	// the content the digest and size name.
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size {
			return Errorf(CodeManifestInvalid, "%s: data is %d bytes but size is %d", pos, len(d.Data), d.Size)
		}
		if got := d.Digest.Algorithm().FromBytes(d.Data); got != d.Digest {
			return Errorf(CodeManifestInvalid, "%s: data has digest %s, not the descriptor's %s", pos, got, d.Digest)
		}
	}
	return nil
}

// MaxPlatformField caps each string of a descriptor's platform: real ones
// are short ("linux", "arm64", "v8", "10.0.20348.2340"), and the registry
// keeps the platform of an absent index child in a metadata item.
const MaxPlatformField = 128

func validatePlatform(pos string, p *v1.Platform) error {
	if p == nil {
		return nil
	}
	fields := []struct{ name, value string }{
		{"os", p.OS}, {"architecture", p.Architecture}, {"variant", p.Variant}, {"os.version", p.OSVersion},
	}
	for _, f := range p.OSFeatures {
		fields = append(fields, struct{ name, value string }{"os.features", f})
	}
	for _, f := range fields {
		if len(f.value) > MaxPlatformField {
			return Errorf(CodeManifestInvalid, "%s: platform %s is %d bytes long; the limit is %d", pos, f.name, len(f.value), MaxPlatformField)
		}
	}
	return nil
}
