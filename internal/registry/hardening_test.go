package registry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// pushArtifact stores a config blob and a manifest naming it in repo
// under tags.
func pushArtifact(t *testing.T, reg *registry.Registry, repo string, n int, tags ...string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	cfg := []byte(`{"n":` + strings.Repeat("1", n+1) + `}`)
	d := digest.FromBytes(cfg)
	if _, err := reg.PutBlob(ctx, repo, d, int64(len(cfg)), strings.NewReader(string(cfg))); err != nil {
		t.Fatal(err)
	}
	body := artifact(t, d, len(cfg), n)
	ref, err := oci.ParseReference(tags[0])
	if err != nil {
		t.Fatal(err)
	}
	res, err := reg.PutManifest(ctx, repo, ref, oci.MediaTypeImageManifest, body, tags[1:])
	if err != nil {
		t.Fatal(err)
	}
	return res.Digest
}

// Listing cursors longer than any name (DynamoDB refuses keys over 1,024
// bytes) are no error on either backend, and list what follows them.
func TestListingCursors(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg := newRegistryOn(t, open(t))
			ctx := context.Background()
			pushArtifact(t, reg, "a/app", 1, "v1", "v2", "zz")
			pushArtifact(t, reg, "z/app", 2, "v1")
			long := func(prefix string, n int) string { return prefix + strings.Repeat("x", n) }
			tagCases := []struct {
				name, last string
				want       []string
			}{
				{"a valid tag", "v1", []string{"v2", "zz"}},
				{"3,000 characters", long("v", 3000), []string{"zz"}},
				{"200 characters sorting first", long("A", 200), []string{"v1", "v2", "zz"}},
				{"not a tag at all", "v1/../\x00\xff", []string{"v2", "zz"}},
				{"past the end", long("zz", 3000), []string{}},
			}
			for _, tc := range tagCases {
				got, _, err := reg.ListTags(ctx, "a/app", storage.Page{After: tc.last})
				if err != nil {
					t.Errorf("tags after %s: %v", tc.name, err)
					continue
				}
				if diff := cmp.Diff(append([]string{}, got...), tc.want); diff != "" {
					t.Errorf("tags after %s (-got +want):\n%s", tc.name, diff)
				}
			}
			catCases := []struct {
				name, last string
				want       []string
			}{
				{"3,000 characters", long("a/", 3000), []string{"z/app"}},
				{"past the end", long("z/", 3000), nil},
				{"not a name", "A\xff\x00", []string{"a/app", "z/app"}},
			}
			for _, tc := range catCases {
				got, _, err := reg.Catalog(ctx, storage.Page{After: tc.last}, nil)
				if err != nil {
					t.Errorf("catalog after %s: %v", tc.name, err)
					continue
				}
				if diff := cmp.Diff(got, tc.want); diff != "" {
					t.Errorf("catalog after %s (-got +want):\n%s", tc.name, diff)
				}
			}
		})
	}
}
