package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// staticPolicies is a PolicySource over a fixed list.
type staticPolicies []oci.Policy

func (s staticPolicies) PolicyFor(_ context.Context, repo string) (oci.Policy, error) {
	return oci.ResolvePolicy(s, repo), nil
}

type child struct {
	platform string // os/arch[/variant]; "" for none
	pushed   bool
}

// pushIndex pushes an image per child (only the pushed ones) and returns
// the index body naming all of them.
func pushIndex(t *testing.T, reg *registry.Registry, repo string, children []child) ([]byte, []digest.Digest) {
	t.Helper()
	ctx := context.Background()
	config := []byte(`{}`)
	if _, err := reg.PutBlob(ctx, repo, digest.FromBytes(config), 2, bytes.NewReader(config)); err != nil {
		t.Fatal(err)
	}
	var descs []map[string]any
	var ds []digest.Digest
	for i, c := range children {
		m := artifact(t, digest.FromBytes(config), 2, i)
		d := digest.FromBytes(m)
		if c.pushed {
			if _, err := reg.PutManifest(ctx, repo, oci.Reference{Digest: d}, oci.MediaTypeImageManifest, m, nil); err != nil {
				t.Fatal(err)
			}
		}
		desc := map[string]any{"mediaType": oci.MediaTypeImageManifest, "digest": d, "size": len(m)}
		if c.platform != "" {
			p, err := oci.ParsePlatform(c.platform)
			if err != nil {
				t.Fatal(err)
			}
			desc["platform"] = p
		}
		descs = append(descs, desc)
		ds = append(ds, d)
	}
	idx, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex, "manifests": descs})
	if err != nil {
		t.Fatal(err)
	}
	return idx, ds
}

func codesOf(err error) []string {
	var es oci.Errors
	if errors.As(err, &es) {
		var out []string
		for _, e := range es {
			out = append(out, string(e.Code)+": "+e.Message)
		}
		return out
	}
	var e *oci.Error
	if errors.As(err, &e) {
		return []string{string(e.Code) + ": " + e.Message}
	}
	if err != nil {
		return []string{err.Error()}
	}
	return nil
}

func TestIndexPolicy(t *testing.T) {
	t.Parallel()
	policies := staticPolicies{
		{Prefix: "mirror", IndexChildren: oci.IndexChildrenNone, ImageBlobs: oci.ImageBlobsOptional},
		{Prefix: "amd", IndexChildren: oci.IndexChildrenPlatforms, Platforms: []string{"linux/amd64"}, ImageBlobs: oci.ImageBlobsRequired},
	}
	threePlatforms := []child{{"linux/amd64", true}, {"linux/arm64/v8", false}, {"linux/s390x", false}}
	tests := []struct {
		name     string
		repo     string
		children []child
		wantErrs []string // substrings, one per error, in order
	}{
		{"strict default refuses each absent child", "library/app", threePlatforms, []string{
			"MANIFEST_BLOB_UNKNOWN: manifest sha256:", "MANIFEST_BLOB_UNKNOWN: manifest sha256:"}},
		{"strict message names platform and policy", "library/app", []child{{"linux/arm64/v8", false}}, []string{
			"for platform linux/arm64/v8 is not in repository library/app (default index policy: index-children=all image-blobs=required)"}},
		{"none accepts any absent child", "mirror/app", threePlatforms, nil},
		{"platforms accepts other platforms absent", "amd/app", threePlatforms, nil},
		{"platforms requires its own", "amd/app", []child{{"linux/amd64", false}, {"linux/arm64", true}}, []string{
			"for platform linux/amd64 is not in repository amd/app (index policy of amd/: index-children=platforms platforms=linux/amd64 image-blobs=required)"}},
		{"platforms requires children without platform", "amd/app", []child{{"", false}}, []string{"MANIFEST_BLOB_UNKNOWN"}},
		{"prefix is a path component", "mirrorx/app", []child{{"linux/s390x", false}}, []string{"default index policy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := newRegistryOn(t, localStores(t), registry.WithPolicies(policies))
			idx, _ := pushIndex(t, reg, tc.repo, tc.children)
			_, err := reg.PutManifest(context.Background(), tc.repo, oci.Reference{Tag: "v1"}, oci.MediaTypeImageIndex, idx, nil)
			got := codesOf(err)
			if len(got) != len(tc.wantErrs) {
				t.Fatalf("errors: got %q, want %d matching %q", got, len(tc.wantErrs), tc.wantErrs)
			}
			for i, want := range tc.wantErrs {
				if !strings.Contains(got[i], want) {
					t.Errorf("error %d: got %q, want it to contain %q", i, got[i], want)
				}
			}
		})
	}
}

// TestPartialMirror: a sparse index keeps its digest, its absent child's
// GET explains itself, and IndexStatus tells present from absent.
func TestPartialMirror(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := newRegistryOn(t, localStores(t), registry.WithPolicies(staticPolicies{{Prefix: "mirror", IndexChildren: oci.IndexChildrenNone, ImageBlobs: oci.ImageBlobsRequired}}))
	idx, ds := pushIndex(t, reg, "mirror/app", []child{{"linux/amd64", true}, {"linux/arm64/v8", false}})
	res, err := reg.PutManifest(ctx, "mirror/app", oci.Reference{Tag: "v1"}, oci.MediaTypeImageIndex, idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != digest.FromBytes(idx) {
		t.Errorf("index digest changed: %s vs %s", res.Digest, digest.FromBytes(idx))
	}
	_, err = reg.ResolveManifest(ctx, "mirror/app", oci.Reference{Digest: ds[1]})
	msg := strings.Join(codesOf(err), "")
	for _, want := range []string{"MANIFEST_UNKNOWN", "platform linux/arm64/v8", "partial mirror", res.Digest.String()} {
		if !strings.Contains(msg, want) {
			t.Errorf("absent child error %q lacks %q", msg, want)
		}
	}
	_, err = reg.ResolveManifest(ctx, "mirror/app", oci.Reference{Digest: digest.FromString("unrelated")})
	if msg := strings.Join(codesOf(err), ""); strings.Contains(msg, "partial mirror") {
		t.Errorf("an unrelated miss must not claim a partial mirror: %q", msg)
	}
	_, status, err := reg.IndexStatus(ctx, "mirror/app", oci.Reference{Tag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(status) != 2 || !status[0].Present || status[1].Present || status[1].Platform != "linux/arm64/v8" {
		t.Errorf("index status: %+v", status)
	}
}

// TestImageBlobsOptional: a manifest-only mirror accepts an image whose
// config and layers are absent; strict repositories refuse it; a subject
// may always be absent.
func TestImageBlobsOptional(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := newRegistryOn(t, localStores(t), registry.WithPolicies(staticPolicies{{Prefix: "meta-only", IndexChildren: oci.IndexChildrenAll, ImageBlobs: oci.ImageBlobsOptional}}))
	f := newPushFixture(t) // config and layer never pushed, subject absent
	if _, err := reg.PutManifest(ctx, "meta-only/app", oci.Reference{Tag: "v1"}, oci.MediaTypeImageManifest, f.manifest(t), nil); err != nil {
		t.Errorf("manifest-only mirror refused the image: %v", err)
	}
	_, err := reg.PutManifest(ctx, "strict/app", oci.Reference{Tag: "v1"}, oci.MediaTypeImageManifest, f.manifest(t), nil)
	if got := codesOf(err); len(got) != 2 {
		t.Errorf("strict repository: got %q, want two MANIFEST_BLOB_UNKNOWN (config, layer) and none for the subject", got)
	}
}
