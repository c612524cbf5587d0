package oci_test

import (
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skiff-registry/skiff/pkg/oci"
)

var update = flag.Bool("update", false, "rewrite testdata/manifests/*.golden from the current output")

// golden is what a .golden file records for one ParseManifest call.
type golden struct {
	Manifest *oci.Manifest `json:",omitempty"`
	Error    *goldenError  `json:",omitempty"`
}

// goldenError is the client-visible part of an *oci.Error.
type goldenError struct {
	Code    oci.ErrorCode
	Status  int
	Message string
}

func toGolden(m *oci.Manifest, err error) golden {
	if err == nil {
		return golden{Manifest: m}
	}
	var oe *oci.Error
	if !errors.As(err, &oe) {
		return golden{Error: &goldenError{Code: "NOT_AN_OCI_ERROR", Message: err.Error()}}
	}
	return golden{Error: &goldenError{Code: oe.Code, Status: oe.HTTPStatus(), Message: oe.Message}}
}

func TestParseManifestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		file        string // in testdata/manifests, without .json
		contentType string
		wantCode    oci.ErrorCode
	}{
		{name: "OCI image", file: "oci-image", contentType: oci.MediaTypeImageManifest},
		{name: "OCI index with platforms", file: "oci-index", contentType: oci.MediaTypeImageIndex},
		{name: "Docker schema2", file: "docker-schema2", contentType: oci.MediaTypeDockerManifest},
		{name: "Docker list", file: "docker-list", contentType: oci.MediaTypeDockerManifestList},
		{name: "artifact with subject", file: "artifact-subject", contentType: oci.MediaTypeImageManifest},
		{name: "artifact type from config", file: "artifact-config-type", contentType: oci.MediaTypeImageManifest},
		{name: "index with subject", file: "index-subject", contentType: oci.MediaTypeImageIndex},
		{name: "schema1", file: "schema1", contentType: oci.MediaTypeDockerSchema1Signed, wantCode: oci.CodeManifestInvalid},
		{name: "schema1 without content type", file: "schema1", wantCode: oci.CodeManifestInvalid},
		{name: "mismatched media type", file: "oci-image", contentType: oci.MediaTypeImageIndex, wantCode: oci.CodeManifestInvalid},
		{name: "bad descriptor digest", file: "bad-descriptor-digest", contentType: oci.MediaTypeImageManifest, wantCode: oci.CodeManifestInvalid},
		{name: "data does not match digest", file: "bad-data", contentType: oci.MediaTypeImageManifest, wantCode: oci.CodeManifestInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", "manifests", tc.file+".json"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := oci.ParseManifest(tc.contentType, body)
			checkCode(t, err, tc.wantCode)

			got, err := json.MarshalIndent(toGolden(m, err), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "manifests", strings.ToLower(strings.ReplaceAll(tc.name, " ", "-"))+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(got), string(want)); diff != "" {
				t.Errorf("ParseManifest differs from %s (-got +want):\n%s", path, diff)
			}
		})
	}
}

// imageBody is a valid OCI image manifest into which cases splice fields.
func imageBody(extra string) string {
	return `{"schemaVersion":2,` + extra + `"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + sha256Empty + `","size":0}}`
}

const (
	sha256Empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	goodDesc    = `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + sha256Empty + `","size":0}`
)

func TestParseManifestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		wantCode    oci.ErrorCode
		wantMsg     string // substring
	}{
		{name: "empty body", contentType: oci.MediaTypeImageManifest, body: "", wantCode: oci.CodeManifestInvalid, wantMsg: "not valid JSON"},
		{name: "invalid JSON", contentType: oci.MediaTypeImageManifest, body: "{", wantCode: oci.CodeManifestInvalid, wantMsg: "not valid JSON"},
		{name: "array", contentType: oci.MediaTypeImageManifest, body: "[]", wantCode: oci.CodeManifestInvalid, wantMsg: "want an object, got a JSON array"},
		{name: "null", contentType: oci.MediaTypeImageManifest, body: "null", wantCode: oci.CodeManifestInvalid, wantMsg: "must be a JSON object"},
		{name: "trailing data", contentType: oci.MediaTypeImageManifest, body: imageBody("") + "x", wantCode: oci.CodeManifestInvalid, wantMsg: "not valid JSON"},
		{name: "no schemaVersion", contentType: oci.MediaTypeImageManifest, body: `{"config":` + goodDesc + `}`, wantCode: oci.CodeManifestInvalid, wantMsg: "schemaVersion is required"},
		{name: "schemaVersion 3", contentType: oci.MediaTypeImageManifest, body: strings.Replace(imageBody(""), `"schemaVersion":2`, `"schemaVersion":3`, 1), wantCode: oci.CodeManifestInvalid, wantMsg: "schemaVersion must be 2, got 3"},
		{name: "schemaVersion 1", contentType: oci.MediaTypeImageManifest, body: strings.Replace(imageBody(""), `"schemaVersion":2`, `"schemaVersion":1`, 1), wantCode: oci.CodeManifestInvalid, wantMsg: "schema1 manifests are not supported"},
		{name: "schemaVersion string", contentType: oci.MediaTypeImageManifest, body: strings.Replace(imageBody(""), `"schemaVersion":2`, `"schemaVersion":"2"`, 1), wantCode: oci.CodeManifestInvalid, wantMsg: "schemaVersion: want an integer, got a JSON string"},
		{name: "schema1 body mediaType", body: `{"schemaVersion":1,"mediaType":"` + oci.MediaTypeDockerSchema1 + `"}`, wantCode: oci.CodeManifestInvalid, wantMsg: "schema1 manifests are not supported"},
		{name: "no media type anywhere", body: imageBody(""), wantCode: oci.CodeManifestInvalid, wantMsg: "send a Content-Type header"},
		{name: "unknown media type", contentType: "application/json", body: imageBody(""), wantCode: oci.CodeManifestInvalid, wantMsg: "supported are " + oci.MediaTypeImageManifest},
		{name: "body media type mismatch", contentType: oci.MediaTypeDockerManifest, body: imageBody(`"mediaType":"` + oci.MediaTypeImageManifest + `",`), wantCode: oci.CodeManifestInvalid, wantMsg: "does not match the manifest's mediaType"},
		{name: "missing config", contentType: oci.MediaTypeImageManifest, body: `{"schemaVersion":2,"layers":[]}`, wantCode: oci.CodeManifestInvalid, wantMsg: "config is required"},
		{name: "null config", contentType: oci.MediaTypeImageManifest, body: `{"schemaVersion":2,"config":null}`, wantCode: oci.CodeManifestInvalid, wantMsg: "config is required"},
		{name: "config not object", contentType: oci.MediaTypeImageManifest, body: `{"schemaVersion":2,"config":"x"}`, wantCode: oci.CodeManifestInvalid, wantMsg: "config: want an object, got a JSON string"},
		{name: "image with manifests", contentType: oci.MediaTypeImageManifest, body: imageBody(`"manifests":[],`), wantCode: oci.CodeManifestInvalid, wantMsg: `must not have a "manifests" field`},
		{name: "index with layers", contentType: oci.MediaTypeImageIndex, body: `{"schemaVersion":2,"manifests":[],"layers":[]}`, wantCode: oci.CodeManifestInvalid, wantMsg: `must not have a "layers" field`},
		{name: "index with config", contentType: oci.MediaTypeImageIndex, body: `{"schemaVersion":2,"manifests":[],"config":` + goodDesc + `}`, wantCode: oci.CodeManifestInvalid, wantMsg: `must not have a "config" field`},
		{name: "index without manifests", contentType: oci.MediaTypeImageIndex, body: `{"schemaVersion":2}`, wantCode: oci.CodeManifestInvalid, wantMsg: "manifests is required"},
		{name: "index manifests not array", contentType: oci.MediaTypeImageIndex, body: `{"schemaVersion":2,"manifests":{}}`, wantCode: oci.CodeManifestInvalid, wantMsg: "manifests: want an array, got a JSON object"},
		{name: "index null child", contentType: oci.MediaTypeImageIndex, body: `{"schemaVersion":2,"manifests":[null]}`, wantCode: oci.CodeManifestInvalid, wantMsg: "manifests[0]: a descriptor must be an object"},
		{name: "layer size string", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[{"size":"1"}],`), wantCode: oci.CodeManifestInvalid, wantMsg: "layers[0].size: want an integer, got a JSON string"},
		{name: "layer missing mediaType", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[` + goodDesc + `,{"digest":"` + sha256Empty + `","size":0}],`), wantCode: oci.CodeManifestInvalid, wantMsg: "layers[1]: mediaType is required"},
		{name: "layer bad mediaType", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[{"mediaType":"tar","digest":"` + sha256Empty + `","size":0}],`), wantCode: oci.CodeManifestInvalid, wantMsg: `layers[0]: mediaType "tar" is not a media type`},
		{name: "layer mediaType with parameter", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[{"mediaType":"text/plain; charset=utf-8","digest":"` + sha256Empty + `","size":0}],`), wantCode: oci.CodeManifestInvalid, wantMsg: "is not a media type"},
		{name: "layer missing digest", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[{"mediaType":"a/b","size":0}],`), wantCode: oci.CodeManifestInvalid, wantMsg: "layers[0]: digest is required"},
		{name: "layer sha384 digest", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[{"mediaType":"a/b","digest":"sha384:` + strings.Repeat("a", 96) + `","size":0}],`), wantCode: oci.CodeManifestInvalid, wantMsg: "layers[0]: unsupported digest algorithm"},
		{name: "negative size", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[{"mediaType":"a/b","digest":"` + sha256Empty + `","size":-1}],`), wantCode: oci.CodeManifestInvalid, wantMsg: "layers[0]: size must not be negative, got -1"},
		{name: "data size mismatch", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[{"mediaType":"a/b","digest":"` + sha256Empty + `","size":5,"data":""}],`), wantCode: oci.CodeManifestInvalid, wantMsg: "layers[0]: data is 0 bytes but size is 5"},
		{name: "data bad base64", contentType: oci.MediaTypeImageManifest, body: imageBody(`"layers":[{"mediaType":"a/b","digest":"` + sha256Empty + `","size":0,"data":"!!"}],`), wantCode: oci.CodeManifestInvalid, wantMsg: "layers[0]: illegal base64"},
		{name: "bad subject", contentType: oci.MediaTypeImageManifest, body: imageBody(`"subject":{"mediaType":"` + oci.MediaTypeImageManifest + `","digest":"sha256:baddigeststring","size":1},`), wantCode: oci.CodeManifestInvalid, wantMsg: "subject: malformed digest"},
		{name: "bad artifactType", contentType: oci.MediaTypeImageManifest, body: imageBody(`"artifactType":"sbom",`), wantCode: oci.CodeManifestInvalid, wantMsg: `artifactType "sbom" is not a media type`},
		{name: "bad child artifactType", contentType: oci.MediaTypeImageIndex, body: `{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"` + sha256Empty + `","size":0,"artifactType":"x"}]}`, wantCode: oci.CodeManifestInvalid, wantMsg: `manifests[0]: artifactType "x"`},
		{name: "annotations not strings", contentType: oci.MediaTypeImageManifest, body: imageBody(`"annotations":{"a":1},`), wantCode: oci.CodeManifestInvalid, wantMsg: "annotations: want a string, got a JSON number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := oci.ParseManifest(tc.contentType, []byte(tc.body))
			e := checkCode(t, err, tc.wantCode)
			if m != nil {
				t.Errorf("ParseManifest returned a manifest with an error: %+v", m)
			}
			if !strings.Contains(e.Message, tc.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tc.wantMsg)
			}
		})
	}
}

func TestParseManifestAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		contentType   string
		body          string
		wantMediaType string
		wantArtifact  string
	}{
		{name: "content type parameters ignored", contentType: oci.MediaTypeImageManifest + "; charset=utf-8", body: imageBody(""), wantMediaType: oci.MediaTypeImageManifest, wantArtifact: "application/vnd.oci.image.config.v1+json"},
		{name: "content type case ignored", contentType: strings.ToUpper(oci.MediaTypeImageManifest), body: imageBody(""), wantMediaType: oci.MediaTypeImageManifest, wantArtifact: "application/vnd.oci.image.config.v1+json"},
		{name: "media type from body", body: imageBody(`"mediaType":"` + oci.MediaTypeDockerManifest + `",`), wantMediaType: oci.MediaTypeDockerManifest, wantArtifact: "application/vnd.oci.image.config.v1+json"},
		{name: "unknown fields tolerated", contentType: oci.MediaTypeImageManifest, body: imageBody(`"org.example.x":{"deep":[1,2]},"layers":[{"mediaType":"a/b","digest":"` + sha256Empty + `","size":0,"custom":true}],`), wantMediaType: oci.MediaTypeImageManifest, wantArtifact: "application/vnd.oci.image.config.v1+json"},
		{name: "layers absent", contentType: oci.MediaTypeImageManifest, body: imageBody(""), wantMediaType: oci.MediaTypeImageManifest, wantArtifact: "application/vnd.oci.image.config.v1+json"},
		{name: "empty index", contentType: oci.MediaTypeImageIndex, body: `{"schemaVersion":2,"manifests":[]}`, wantMediaType: oci.MediaTypeImageIndex},
		{name: "index with null layers", contentType: oci.MediaTypeImageIndex, body: `{"schemaVersion":2,"manifests":[],"layers":null}`, wantMediaType: oci.MediaTypeImageIndex},
		{name: "explicit artifactType wins", contentType: oci.MediaTypeImageManifest, body: imageBody(`"artifactType":"application/vnd.example+json",`), wantMediaType: oci.MediaTypeImageManifest, wantArtifact: "application/vnd.example+json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := oci.ParseManifest(tc.contentType, []byte(tc.body))
			checkCode(t, err, "")
			if diff := cmp.Diff([]string{m.MediaType, m.ArtifactType}, []string{tc.wantMediaType, tc.wantArtifact}); diff != "" {
				t.Errorf("media type, artifact type (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseManifestSize(t *testing.T) {
	t.Parallel()
	// Pad a valid manifest with whitespace, which JSON ignores, to the limit.
	valid := imageBody("")
	atLimit := valid + strings.Repeat(" ", oci.MaxManifestSize-len(valid))
	tests := []struct {
		name     string
		body     string
		wantCode oci.ErrorCode
	}{
		{name: "at limit", body: atLimit},
		{name: "over limit", body: atLimit + " ", wantCode: oci.CodeSizeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := oci.ParseManifest(oci.MediaTypeImageManifest, []byte(tc.body))
			e := checkCode(t, err, tc.wantCode)
			if e == nil {
				return
			}
			if got := e.HTTPStatus(); got != http.StatusRequestEntityTooLarge {
				t.Errorf("HTTPStatus() = %d, want 413", got)
			}
			if !strings.Contains(e.Message, "4194304") {
				t.Errorf("message = %q, want it to name the limit", e.Message)
			}
		})
	}
}

func TestManifestReferences(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"oci-image", "oci-index", "artifact-subject"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", "manifests", file+".json"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := oci.ParseManifest("", body)
			checkCode(t, err, "")
			want := len(m.Layers) + len(m.Manifests)
			if m.Config != nil {
				want++
			}
			refs := m.References()
			if len(refs) != want {
				t.Errorf("len(References()) = %d, want %d", len(refs), want)
			}
			for _, r := range refs {
				if m.Subject != nil && r.Digest == m.Subject.Digest {
					t.Errorf("References() includes the subject %s", r.Digest)
				}
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "manifests", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no manifest seeds: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, ct := range append(oci.SupportedManifestMediaTypes(), "", oci.MediaTypeDockerSchema1) {
			f.Add(ct, body)
		}
	}
	f.Add(oci.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"manifests":[null]}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		m, err := oci.ParseManifest(contentType, body)
		if err != nil {
			var oe *oci.Error
			if !errors.As(err, &oe) || (oe.Code != oci.CodeManifestInvalid && oe.Code != oci.CodeSizeInvalid) || oe.Message == "" {
				t.Fatalf("error %v (%T) is not a MANIFEST_INVALID or SIZE_INVALID *oci.Error with a message", err, err)
			}
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			return
		}
		if !oci.IsImageMediaType(m.MediaType) && !oci.IsIndexMediaType(m.MediaType) {
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		if m.IsIndex() == (m.Config != nil) {
			t.Fatalf("index=%v but config=%v", m.IsIndex(), m.Config)
		}
		all := m.References()
		if m.Subject != nil {
			all = append(all, *m.Subject)
		}
		for _, d := range all {
			if _, err := oci.ParseDigest(d.Digest.String()); err != nil {
				t.Fatalf("accepted descriptor with bad digest %q", d.Digest)
			}
			if d.Size < 0 || d.MediaType == "" {
				t.Fatalf("accepted bad descriptor %+v", d)
			}
		}
		// The effective media type given as Content-Type must parse the same.
		again, err := oci.ParseManifest(m.MediaType, body)
		if err != nil {
			t.Fatalf("re-parse with Content-Type %q: %v", m.MediaType, err)
		}
		if diff := cmp.Diff(again, m); diff != "" {
			t.Fatalf("re-parse differs (-got +want):\n%s", diff)
		}
	})
}

// Manifests two JSON parsers can read differently are refused, each with a
// message that says where; their well-formed twins are accepted.
func TestParseManifestAmbiguousJSON(t *testing.T) {
	t.Parallel()
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d1 + `","size":2}`
	layer := `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + d2 + `","size":3}`
	image := func(rest string) string {
		return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + cfg + rest + `}`
	}
	tests := []struct {
		name    string
		body    string
		wantMsg string // part of the message; "" means accepted
	}{
		{"plain", image(`,"layers":[` + layer + `]`), ""},
		{"invalid UTF-8 in an annotation", image(`,"annotations":{"a":"` + "\xff\xfe" + `"}`), "not valid UTF-8"},
		{"invalid UTF-8 in a key", image(`,"annotations":{"` + "\xc3" + `":"x"}`), "not valid UTF-8"},
		{"valid UTF-8 annotation", image(`,"annotations":{"a":"ünïcødé ✓"}`), ""},
		{"duplicate layers key", image(`,"layers":[` + layer + `],"layers":[]`), `the key "layers" twice`},
		{"duplicate key, escaped", image(`,"layers":[],"l\u0061yers":[]`), `the key "layers" twice`},
		{"duplicate digest in a descriptor", image(`,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + d2 + `","digest":"` + d1 + `","size":3}]`), `layers[0] has the key "digest" twice`},
		{"duplicate annotation", image(`,"annotations":{"a":"1","a":"2"}`), `annotations has the key "a" twice`},
		{"duplicate platform field", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d1 + `","size":2,"platform":{"os":"linux","architecture":"amd64","architecture":"arm64"}}]}`, `manifests[0].platform has the key "architecture" twice`},
		{"case variant of layers", image(`,"Layers":[` + layer + `]`), `"Layers", which differs from "layers" only in case`},
		{"case variant of a descriptor's digest", image(`,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + d2 + `","Digest":"` + d1 + `","size":3}]`), `"Digest", which differs from "digest"`},
		{"case variant of a platform field", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d1 + `","size":2,"platform":{"os":"linux","Architecture":"arm64","architecture":"amd64"}}]}`, `"Architecture"`},
		{"case variants in annotations are keys of their own", image(`,"annotations":{"Foo":"1","foo":"2"}`), ""},
		{"lone high surrogate", image(`,"annotations":{"a":"\ud800x"}`), "lone UTF-16 surrogate"},
		{"lone low surrogate", image(`,"annotations":{"a":"\udc00"}`), "lone UTF-16 surrogate"},
		{"a surrogate pair", image(`,"annotations":{"a":"\ud83d\ude00"}`), ""},
		{"an escaped backslash before u", image(`,"annotations":{"a":"\\ud800"}`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := oci.ParseManifest(oci.MediaTypeImageManifest, []byte(tc.body))
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			checkCode(t, err, oci.CodeManifestInvalid)
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("message %q does not say %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

// The descriptor cap: MaxDescriptors are accepted, one more is refused
// before anything is looked up.
func TestParseManifestDescriptorCap(t *testing.T) {
	t.Parallel()
	layers := func(n int) string {
		l := `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":3}`
		return strings.TrimSuffix(strings.Repeat(l+",", n), ",")
	}
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2}`
	for _, tc := range []struct {
		layers int
		ok     bool
	}{{oci.MaxDescriptors - 1, true}, {oci.MaxDescriptors, false}} {
		body := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + cfg + `,"layers":[` + layers(tc.layers) + `]}`
		_, err := oci.ParseManifest("", []byte(body))
		if tc.ok && err != nil {
			t.Errorf("config + %d layers: %v", tc.layers, err)
		}
		if !tc.ok {
			checkCode(t, err, oci.CodeManifestInvalid)
		}
	}
}
