package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// RunMetaStore runs the MetaStore contract against the stores newStore
// returns: one fresh, empty store per subtest.
func RunMetaStore(t *testing.T, newStore func(t *testing.T) storage.MetaStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, ms storage.MetaStore)
	}{
		{"Blobs", testMetaBlobs},
		{"BlobsBatch", testMetaBlobsBatch},
		{"Manifests", testMetaManifests},
		{"ManifestsBatch", testMetaManifestsBatch},
		{"Tags", testMetaTags},
		{"TagsOrder", testMetaTagsOrder},
		{"TagsPaging", testMetaTagsPaging},
		{"RepoIsolation", testMetaRepoIsolation},
		{"Referrers", testMetaReferrers},
		{"ReferrersIsolation", testMetaReferrersIsolation},
		{"Absent", testMetaAbsent},
		{"Repositories", testMetaRepositories},
		{"Uploads", testMetaUploads},
		{"UploadsConcurrentUpdate", testMetaUploadsConcurrent},
		{"Settings", testMetaSettings},
		{"SettingsConcurrentPut", testMetaSettingsConcurrent},
		{"SettingsList", testMetaSettingsList},
		{"Counters", testMetaCounters},
		{"Cancelled", testMetaCancelled},
		{"Contents", testMetaContents},
		{"ContentsConcurrentUpsert", testMetaContentsConcurrent},
		{"ContentsList", testMetaContentsList},
		{"BlobLinks", testMetaBlobLinks},
		{"ManifestMarks", testMetaManifestMarks},
		{"ManifestDoomRace", testMetaManifestDoomRace},
		{"TagIf", testMetaTagIf},
		{"ListBlobsManifests", testMetaListRepo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// Repositories whose names are prefixes of one another: a store that
// builds keys by plain concatenation leaks items between them.
var nestedRepos = []string{"a", "a/b", "a/bc", "a/b/c", "a/b-c", "a/b.c", "ab"}

func testBlob(s string) storage.Blob {
	d := testDigest(s)
	return storage.Blob{Digest: d, Size: int64(len(s)) + 1000, Key: "blobs/sha256/" + d.Encoded()}
}

func testMetaBlobs(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	b := testBlob("layer")
	_, err := ms.GetBlob(ctx, "r", b.Digest)
	wantErr(t, err, storage.ErrNotFound)

	noErr(t, ms.PutBlob(ctx, "r", b))
	noErr(t, ms.PutBlob(ctx, "r", b)) // idempotent
	got, err := ms.GetBlob(ctx, "r", b.Digest)
	noErr(t, err)
	if diff := cmp.Diff(got, b); diff != "" {
		t.Errorf("GetBlob mismatch (-got +want):\n%s", diff)
	}

	noErr(t, ms.DeleteBlob(ctx, "r", b.Digest))
	_, err = ms.GetBlob(ctx, "r", b.Digest)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.DeleteBlob(ctx, "r", b.Digest), storage.ErrNotFound)
	wantErr(t, ms.DeleteBlob(ctx, "r", testDigest("never")), storage.ErrNotFound)

	// Linked again after deletion.
	noErr(t, ms.PutBlob(ctx, "r", b))
	got, err = ms.GetBlob(ctx, "r", b.Digest)
	noErr(t, err)
	if diff := cmp.Diff(got, b); diff != "" {
		t.Errorf("GetBlob after re-link mismatch (-got +want):\n%s", diff)
	}
}

func testMetaBlobsBatch(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	want := map[digest.Digest]storage.Blob{}
	var ask []digest.Digest
	// 150 asked, 120 present: more than one DynamoDB batch.
	for i := range 150 {
		b := testBlob(fmt.Sprint("blob", i))
		ask = append(ask, b.Digest)
		if i%5 == 0 {
			continue
		}
		noErr(t, ms.PutBlob(ctx, "r", b))
		want[b.Digest] = b
	}
	ask = append(ask, ask[1], ask[1], ask[0]) // duplicates, present and absent
	got, err := ms.GetBlobs(ctx, "r", ask)
	noErr(t, err)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("GetBlobs mismatch (-got +want):\n%s", diff)
	}

	got, err = ms.GetBlobs(ctx, "r", nil)
	noErr(t, err)
	if diff := cmp.Diff(got, map[digest.Digest]storage.Blob{}, equateEmpty); diff != "" {
		t.Errorf("GetBlobs(nil) mismatch (-got +want):\n%s", diff)
	}
	got, err = ms.GetBlobs(ctx, "other", ask)
	noErr(t, err)
	if diff := cmp.Diff(got, map[digest.Digest]storage.Blob{}, equateEmpty); diff != "" {
		t.Errorf("GetBlobs in another repository mismatch (-got +want):\n%s", diff)
	}
}

// fullManifest has every field set.
func fullManifest(s string) storage.Manifest {
	return storage.Manifest{
		Digest:       testDigest(s),
		MediaType:    "application/vnd.oci.image.manifest.v1+json",
		Size:         int64(100 + len(s)),
		Body:         []byte(`{"schemaVersion":2,"name":"` + s + `"}`),
		Key:          "manifests/" + testDigest(s).Encoded(),
		ArtifactType: "application/vnd.example.sbom",
		Subject:      testDigest("subject of " + s),
		Annotations:  map[string]string{"org.opencontainers.image.title": s, "k": ""},
		Refs:         []digest.Digest{testDigest("config"), testDigest("layer1"), testDigest("layer2")},
		Created:      testTime,
	}
}

// minimalManifest has only the fields a plain image manifest needs.
func minimalManifest(s string) storage.Manifest {
	return storage.Manifest{
		Digest:    testDigest(s),
		MediaType: "application/vnd.oci.image.index.v1+json",
		Size:      2,
		Key:       "manifests/" + testDigest(s).Encoded(),
		Created:   testTime.Add(-1500 * time.Millisecond),
	}
}

func testMetaManifests(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	for _, m := range []storage.Manifest{fullManifest("full"), minimalManifest("minimal")} {
		_, err := ms.GetManifest(ctx, "r", m.Digest)
		wantErr(t, err, storage.ErrNotFound)

		noErr(t, ms.PutManifest(ctx, "r", m))
		noErr(t, ms.PutManifest(ctx, "r", m)) // idempotent
		got, err := ms.GetManifest(ctx, "r", m.Digest)
		noErr(t, err)
		if diff := cmp.Diff(got, m, equateEmpty); diff != "" {
			t.Errorf("GetManifest(%s) mismatch (-got +want):\n%s", m.Digest, diff)
		}
		_, err = ms.GetManifest(ctx, "other", m.Digest)
		wantErr(t, err, storage.ErrNotFound)
	}

	m := fullManifest("full")
	noErr(t, ms.DeleteManifest(ctx, "r", m.Digest))
	_, err := ms.GetManifest(ctx, "r", m.Digest)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.DeleteManifest(ctx, "r", m.Digest), storage.ErrNotFound)
	// The other manifest is untouched.
	_, err = ms.GetManifest(ctx, "r", testDigest("minimal"))
	noErr(t, err)
}

func testMetaManifestsBatch(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	want := map[digest.Digest]storage.Manifest{}
	var ask []digest.Digest
	for i := range 130 {
		m := fullManifest(fmt.Sprint("manifest", i))
		if i%2 == 0 {
			m = minimalManifest(fmt.Sprint("manifest", i))
		}
		ask = append(ask, m.Digest)
		if i%3 == 0 {
			continue
		}
		noErr(t, ms.PutManifest(ctx, "r", m))
		want[m.Digest] = m
	}
	ask = append(ask, ask[1], ask[0])
	got, err := ms.GetManifests(ctx, "r", ask)
	noErr(t, err)
	if diff := cmp.Diff(got, want, equateEmpty); diff != "" {
		t.Errorf("GetManifests mismatch (-got +want):\n%s", diff)
	}
	got, err = ms.GetManifests(ctx, "r/sub", ask)
	noErr(t, err)
	if diff := cmp.Diff(got, map[digest.Digest]storage.Manifest{}, equateEmpty); diff != "" {
		t.Errorf("GetManifests in another repository mismatch (-got +want):\n%s", diff)
	}
}

func testMetaCancelled(t *testing.T, ms storage.MetaStore) {
	ctx := cancelled(t)
	tag := storage.Tag{Name: "latest", Digest: testDigest("m")}
	wantErr(t, ms.PutTag(ctx, "r", tag), context.Canceled)
	_, err := ms.GetTag(t.Context(), "r", "latest")
	wantErr(t, err, storage.ErrNotFound)

	noErr(t, ms.PutTag(t.Context(), "r", tag))
	_, err = ms.GetTag(ctx, "r", "latest")
	wantErr(t, err, context.Canceled)
	_, err = ms.ListTags(ctx, "r", storage.Page{})
	wantErr(t, err, context.Canceled)
	wantErr(t, ms.PutSetting(ctx, storage.Setting{Key: "k", Value: []byte("{}")}, 0), context.Canceled)
	_, err = ms.GetSetting(t.Context(), "k")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.CreateUpload(ctx, storage.Upload{ID: "u", Repo: "r"}), context.Canceled)
	_, err = ms.GetUpload(t.Context(), "u")
	wantErr(t, err, storage.ErrNotFound)
	now := time.Now()
	_, _, err = ms.Reserve(ctx, "k", now, time.Minute, 0)
	wantErr(t, err, context.Canceled)
	counts, err := ms.GetCounts(t.Context(), []string{"k"}, now)
	noErr(t, err)
	if len(counts) != 0 {
		t.Errorf("a cancelled Reserve counted: %v", counts)
	}
}
