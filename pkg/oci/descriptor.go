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
