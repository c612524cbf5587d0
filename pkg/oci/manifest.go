package oci

import (
	"encoding/json"
	"net/http"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest is a parsed, validated manifest: what the registry needs to store it and check its references.
type Manifest struct {
	MediaType    string            // effective media type
	ArtifactType string            // for referrers: artifactType field; for an image manifest without it, config.mediaType
	Annotations  map[string]string // top-level annotations, nil when absent
	Config       *v1.Descriptor    // image manifests
	Layers       []v1.Descriptor   // image manifests
	Manifests    []v1.Descriptor   // indexes (children, with Platform)
	Subject      *v1.Descriptor    // the manifest this one refers to, for the referrers API
}

// IsIndex reports whether m is an OCI index or Docker manifest list.
func (m *Manifest) IsIndex() bool {
	return IsIndexMediaType(m.MediaType)
}

// References returns the descriptors a registry may require to exist before
// accepting m: the config and layers of an image, or the children of an
// index. Subject is left out because the spec requires a manifest with an
// unknown subject to be accepted. Non-distributable layers are included;
// callers skip them with IsNonDistributable.
func (m *Manifest) References() []v1.Descriptor {
	refs := make([]v1.Descriptor, 0, 1+len(m.Layers)+len(m.Manifests))
	if m.Config != nil {
		refs = append(refs, *m.Config)
	}
	refs = append(refs, m.Layers...)
	return append(refs, m.Manifests...)
}

// ParseManifest parses and validates body given the request Content-Type (parameters like "; charset=utf-8" ignored).
//
// The Content-Type wins when given, and a body "mediaType" must then agree
// with it: the registry serves the manifest back with the pushed type, so a
// disagreement would make clients read it differently from how it was
// checked. Unknown fields are tolerated, as the specs require.
func ParseManifest(contentType string, body []byte) (*Manifest, error) {
	if len(body) > MaxManifestSize {
		return nil, Errorf(CodeSizeInvalid, "manifest is %d bytes; the limit is %d bytes (4 MiB)", len(body), MaxManifestSize).
			WithStatus(http.StatusRequestEntityTooLarge)
	}
	ct := baseMediaType(contentType)
	if isSchema1MediaType(ct) {
		return nil, schema1Error("Content-Type " + quote(ct))
	}
	if err := checkUTF8(body); err != nil {
		return nil, err
	}
	fields, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	if err := checkSurrogates(body); err != nil {
		return nil, err
	}
	if err := checkKeys(body); err != nil {
		return nil, err
	}
	var bodyMT string
	if _, err := decodeField(fields, "mediaType", &bodyMT); err != nil {
		return nil, err
	}
	if isSchema1MediaType(bodyMT) {
		return nil, schema1Error("mediaType " + quote(bodyMT))
	}
	if err := checkSchemaVersion(fields); err != nil {
		return nil, err
	}
	mt, err := effectiveMediaType(ct, bodyMT)
	if err != nil {
		return nil, err
	}

	m := &Manifest{MediaType: mt}
	if m.IsIndex() {
		err = parseIndex(fields, m)
	} else {
		err = parseImage(fields, m)
	}
	if err != nil {
		return nil, err
	}
	if err := parseCommon(fields, m); err != nil {
		return nil, err
	}
	if n := len(m.References()); n > MaxDescriptors {
		return nil, Errorf(CodeManifestInvalid, "the manifest names %d descriptors; the limit is %d", n, MaxDescriptors)
	}
	return m, nil
}

// schema1Error refuses Docker schema1, which is deprecated, signed with keys
// nobody verifies, and not storable as OCI content. why says how it was
// recognised.
func schema1Error(why string) *Error {
	return Errorf(CodeManifestInvalid,
		"Docker schema1 manifests are not supported (%s); convert to schema2 or OCI, "+
			"for example with \"skopeo copy --format v2s2\" or \"skopeo copy --format oci\", and push again", why)
}

// checkSchemaVersion requires schemaVersion 2, the only version of every
// supported manifest type.
func checkSchemaVersion(fields map[string]json.RawMessage) error {
	var v int
	present, err := decodeField(fields, "schemaVersion", &v)
	switch {
	case err != nil:
		return err
	case !present:
		return Errorf(CodeManifestInvalid, "schemaVersion is required and must be 2")
	case v == 1:
		return schema1Error("schemaVersion 1")
	case v != 2:
		return Errorf(CodeManifestInvalid, "schemaVersion must be 2, got %d", v)
	}
	return nil
}

// effectiveMediaType picks the manifest's media type from the Content-Type
// and the body's mediaType field, and checks that it is supported.
func effectiveMediaType(ct, bodyMT string) (string, error) {
	mt := ct
	switch {
	case ct == "" && bodyMT == "":
		return "", Errorf(CodeManifestInvalid, "manifest media type unknown: send a Content-Type header or set \"mediaType\" in the manifest")
	case ct == "":
		mt = bodyMT
	case bodyMT != "" && bodyMT != ct:
		return "", Errorf(CodeManifestInvalid, "Content-Type %s does not match the manifest's mediaType %s", quote(ct), quote(bodyMT))
	}
	if !IsImageMediaType(mt) && !IsIndexMediaType(mt) {
		return "", Errorf(CodeManifestInvalid, "unsupported manifest media type %s; supported are %s",
			quote(mt), strings.Join(SupportedManifestMediaTypes(), ", "))
	}
	return mt, nil
}

// parseImage fills the image-manifest fields of m.
func parseImage(fields map[string]json.RawMessage, m *Manifest) error {
	if isSet(fields, "manifests") {
		return Errorf(CodeManifestInvalid, "an image manifest (%s) must not have a \"manifests\" field; push an index with an index media type", m.MediaType)
	}
	var cfg v1.Descriptor
	present, err := decodeDescriptor(fields, "config", &cfg)
	switch {
	case err != nil:
		return err
	case !present:
		return Errorf(CodeManifestInvalid, "config is required in an image manifest")
	}
	m.Config = &cfg
	// Layers may be absent or empty: artifacts such as signatures can have
	// none, and distribution accepts that too.
	m.Layers, _, err = decodeDescriptors(fields, "layers")
	return err
}

// parseIndex fills the index fields of m.
func parseIndex(fields map[string]json.RawMessage, m *Manifest) error {
	for _, key := range []string{"config", "layers"} {
		if isSet(fields, key) {
			return Errorf(CodeManifestInvalid, "an index (%s) must not have a %q field; push an image manifest with an image media type", m.MediaType, key)
		}
	}
	children, present, err := decodeDescriptors(fields, "manifests")
	switch {
	case err != nil:
		return err
	case !present:
		return Errorf(CodeManifestInvalid, "manifests is required in an index (an empty array is allowed)")
	}
	m.Manifests = children
	return nil
}

// parseCommon fills the fields shared by images and indexes: subject,
// annotations and the effective artifactType.
func parseCommon(fields map[string]json.RawMessage, m *Manifest) error {
	var subject v1.Descriptor
	present, err := decodeDescriptor(fields, "subject", &subject)
	if err != nil {
		return err
	}
	if present {
		m.Subject = &subject
	}
	if _, err := decodeField(fields, "annotations", &m.Annotations); err != nil {
		return err
	}
	if _, err := decodeField(fields, "artifactType", &m.ArtifactType); err != nil {
		return err
	}
	if m.ArtifactType != "" && !validMediaType(m.ArtifactType) {
		return Errorf(CodeManifestInvalid, "artifactType %s is not a media type of the form type/subtype (RFC 6838)", quote(m.ArtifactType))
	}
	if m.ArtifactType == "" && m.Config != nil {
		// image-spec: the referrers API reports config.mediaType when an
		// image manifest has no artifactType.
		m.ArtifactType = m.Config.MediaType
	}
	return nil
}
