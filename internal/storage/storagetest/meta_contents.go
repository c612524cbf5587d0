package storagetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

func sameContent(t *testing.T, got, want storage.Content) {
	t.Helper()
	if got.Digest != want.Digest || got.Size != want.Size || got.Key != want.Key || !got.Linked.Equal(want.Linked) {
		t.Fatalf("content = %+v, want %+v", got, want)
	}
}

func testMetaContents(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	d := testDigest("content")
	_, err := ms.GetContent(ctx, d)
	wantErr(t, err, storage.ErrNotFound)
	_, err = ms.TouchContent(ctx, d, testTime)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.DeleteContent(ctx, d, "k1", testTime), storage.ErrNotFound)

	first := storage.Content{Digest: d, Size: 42, Key: "k1", Linked: testTime}
	got, err := ms.UpsertContent(ctx, first)
	noErr(t, err)
	sameContent(t, got, first)

	// A second copy loses: the record keeps k1 and takes the new time.
	later := testTime.Add(time.Minute)
	got, err = ms.UpsertContent(ctx, storage.Content{Digest: d, Size: 42, Key: "k2", Linked: later})
	noErr(t, err)
	sameContent(t, got, storage.Content{Digest: d, Size: 42, Key: "k1", Linked: later})

	touched := later.Add(time.Minute)
	got, err = ms.TouchContent(ctx, d, touched)
	noErr(t, err)
	sameContent(t, got, storage.Content{Digest: d, Size: 42, Key: "k1", Linked: touched})
	// A late write with an earlier time does not move Linked back.
	got, err = ms.TouchContent(ctx, d, testTime)
	noErr(t, err)
	sameContent(t, got, storage.Content{Digest: d, Size: 42, Key: "k1", Linked: touched})
	got, err = ms.UpsertContent(ctx, storage.Content{Digest: d, Size: 42, Key: "k3", Linked: testTime})
	noErr(t, err)
	sameContent(t, got, storage.Content{Digest: d, Size: 42, Key: "k1", Linked: touched})
	got, err = ms.GetContent(ctx, d)
	noErr(t, err)
	sameContent(t, got, storage.Content{Digest: d, Size: 42, Key: "k1", Linked: touched})

	// Deletion holds only for the key it names and a record linked before
	// the cut-off; at the cut-off exactly it is kept.
	wantErr(t, ms.DeleteContent(ctx, d, "k2", touched.Add(time.Hour)), storage.ErrConflict)
	wantErr(t, ms.DeleteContent(ctx, d, "k1", touched), storage.ErrConflict)
	noErr(t, ms.DeleteContent(ctx, d, "k1", touched.Add(time.Nanosecond)))
	_, err = ms.GetContent(ctx, d)
	wantErr(t, err, storage.ErrNotFound)
}

// testMetaContentsConcurrent: of concurrent upserts of one digest, every
// caller gets the same record back, whose key is one of theirs.
func testMetaContentsConcurrent(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	d := testDigest("race")
	const n = 16
	keys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := ms.UpsertContent(ctx, storage.Content{Digest: d, Size: 7, Key: fmt.Sprintf("key-%02d", i), Linked: testTime})
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = c.Key
		})
	}
	wg.Wait()
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("concurrent upserts returned keys %v, want one key", keys)
		}
	}
	got, err := ms.GetContent(ctx, d)
	noErr(t, err)
	if got.Key != keys[0] {
		t.Fatalf("stored key %s, upserts returned %s", got.Key, keys[0])
	}
}

// testMetaContentsList pages through records of digests spread over
// every shard a store may have, each exactly once.
func testMetaContentsList(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	want := map[digest.Digest]bool{}
	for i := range 300 {
		d := testDigest(fmt.Sprint("list-", i))
		want[d] = true
		_, err := ms.UpsertContent(ctx, storage.Content{Digest: d, Size: int64(i), Key: "k/" + d.Encoded(), Linked: testTime})
		noErr(t, err)
	}
	for _, limit := range []int{0, 1, 7, 100, 1000} {
		seen := map[digest.Digest]bool{}
		p := storage.Page{Limit: limit}
		for pages := 0; ; pages++ {
			if pages > 400 {
				t.Fatalf("limit %d: listing does not end", limit)
			}
			cs, err := ms.ListContents(ctx, p)
			noErr(t, err)
			if limit > 0 && len(cs) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(cs))
			}
			for _, c := range cs {
				if seen[c.Digest] {
					t.Fatalf("limit %d: %s listed twice", limit, c.Digest)
				}
				seen[c.Digest] = true
				if c.Key != "k/"+c.Digest.Encoded() {
					t.Fatalf("listed %+v", c)
				}
			}
			if limit <= 0 || len(cs) < limit {
				break
			}
			p.After = string(cs[len(cs)-1].Digest)
		}
		if diff := cmp.Diff(want, seen); diff != "" {
			t.Fatalf("limit %d: listed (-want +got):\n%s", limit, diff)
		}
	}
}

func testMetaBlobLinks(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	const repo = "gc/links"
	b := testBlob("link")
	b.Linked = testTime
	noErr(t, ms.PutBlob(ctx, repo, b))
	got, err := ms.GetBlob(ctx, repo, b.Digest)
	noErr(t, err)
	if !got.Linked.Equal(testTime) || got.Doomed != "" {
		t.Fatalf("link = %+v", got)
	}

	// Not linked before the cut-off: not doomed.
	wantErr(t, ms.DoomBlob(ctx, repo, b.Digest, "pass-1", testTime), storage.ErrConflict)
	noErr(t, ms.DoomBlob(ctx, repo, b.Digest, "pass-1", testTime.Add(time.Second)))
	got, err = ms.GetBlob(ctx, repo, b.Digest)
	noErr(t, err)
	if got.Doomed != "pass-1" {
		t.Fatalf("doomed link = %+v", got)
	}
	found, err := ms.GetBlobs(ctx, repo, []digest.Digest{b.Digest})
	noErr(t, err)
	if found[b.Digest].Doomed != "pass-1" {
		t.Fatalf("GetBlobs: %+v", found)
	}
	// Marked once: a second mark fails, and another token can't delete it.
	wantErr(t, ms.DoomBlob(ctx, repo, b.Digest, "pass-2", testTime.Add(time.Hour)), storage.ErrConflict)
	wantErr(t, ms.DeleteDoomedBlob(ctx, repo, b.Digest, "pass-2"), storage.ErrConflict)

	// A refresh undoes the mark, so the collection's delete fails.
	now := testTime.Add(time.Minute)
	got, err = ms.RefreshBlob(ctx, repo, b.Digest, now)
	noErr(t, err)
	if got.Doomed != "" || !got.Linked.Equal(now) || got.Key != b.Key || got.Size != b.Size {
		t.Fatalf("refreshed link = %+v", got)
	}
	wantErr(t, ms.DeleteDoomedBlob(ctx, repo, b.Digest, "pass-1"), storage.ErrConflict)

	noErr(t, ms.DoomBlob(ctx, repo, b.Digest, "pass-3", now.Add(time.Second)))
	noErr(t, ms.DeleteDoomedBlob(ctx, repo, b.Digest, "pass-3"))
	_, err = ms.GetBlob(ctx, repo, b.Digest)
	wantErr(t, err, storage.ErrNotFound)

	_, err = ms.RefreshBlob(ctx, repo, b.Digest, now)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.DoomBlob(ctx, repo, b.Digest, "pass-4", now.Add(time.Hour)), storage.ErrNotFound)
	wantErr(t, ms.DeleteDoomedBlob(ctx, repo, b.Digest, "pass-4"), storage.ErrNotFound)

	// A link without a time (written before links had one) counts as old.
	old := testBlob("old")
	noErr(t, ms.PutBlob(ctx, repo, old))
	noErr(t, ms.DoomBlob(ctx, repo, old.Digest, "pass-5", testTime))
}

// testMetaListRepo lists a repository's links and manifests, and only its
// own (nested names included).
func testMetaListRepo(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	for _, repo := range nestedRepos {
		for i := range 3 {
			noErr(t, ms.PutBlob(ctx, repo, testBlob(fmt.Sprint(repo, i))))
			noErr(t, ms.PutManifest(ctx, repo, minimalManifest(fmt.Sprint(repo, i))))
		}
	}
	for _, repo := range nestedRepos {
		var blobs []storage.Blob
		p := storage.Page{Limit: 2}
		for {
			page, err := ms.ListBlobs(ctx, repo, p)
			noErr(t, err)
			blobs = append(blobs, page...)
			if len(page) < p.Limit {
				break
			}
			p.After = string(page[len(page)-1].Digest)
		}
		var want []digest.Digest
		for i := range 3 {
			want = append(want, testBlob(fmt.Sprint(repo, i)).Digest)
		}
		var got []digest.Digest
		for _, b := range blobs {
			got = append(got, b.Digest)
		}
		if diff := cmp.Diff(sorted(want), got); diff != "" {
			t.Fatalf("ListBlobs(%s) (-want +got):\n%s", repo, diff)
		}
		ms2, err := ms.ListManifests(ctx, repo, storage.Page{})
		noErr(t, err)
		want, got = nil, nil
		for i := range 3 {
			want = append(want, minimalManifest(fmt.Sprint(repo, i)).Digest)
		}
		for _, m := range ms2 {
			got = append(got, m.Digest)
		}
		if diff := cmp.Diff(sorted(want), got); diff != "" {
			t.Fatalf("ListManifests(%s) (-want +got):\n%s", repo, diff)
		}
	}
}

func sorted(ds []digest.Digest) []digest.Digest {
	return slices.Sorted(slices.Values(ds))
}
