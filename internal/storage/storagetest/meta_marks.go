package storagetest

import (
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// testMetaManifestMarks: the retention marks on a manifest, each one
// conditional, and a put clearing them.
func testMetaManifestMarks(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	const repo = "gc/marks"
	m := fullManifest("marked")
	m.Created = testTime
	noErr(t, ms.PutManifest(ctx, repo, m))
	got, err := ms.GetManifest(ctx, repo, m.Digest)
	noErr(t, err)
	if !got.Age().Equal(testTime) || got.Doomed != "" || got.Expired {
		t.Fatalf("manifest = %+v", got)
	}

	// Not touched before the cut-off: not doomed.
	wantErr(t, ms.DoomManifest(ctx, repo, m.Digest, "pass-1", testTime), storage.ErrConflict)
	noErr(t, ms.DoomManifest(ctx, repo, m.Digest, "pass-1", testTime.Add(time.Second)))
	got, err = ms.GetManifest(ctx, repo, m.Digest)
	noErr(t, err)
	if got.Doomed != "pass-1" || !got.Expired {
		t.Fatalf("doomed manifest = %+v", got)
	}
	found, err := ms.GetManifests(ctx, repo, []digest.Digest{m.Digest})
	noErr(t, err)
	if found[m.Digest].Doomed != "pass-1" {
		t.Fatalf("GetManifests: %+v", found)
	}
	wantErr(t, ms.DoomManifest(ctx, repo, m.Digest, "pass-2", testTime.Add(time.Hour)), storage.ErrConflict)
	wantErr(t, ms.DeleteDoomedManifest(ctx, repo, m.Digest, "pass-2"), storage.ErrConflict)

	// A use undoes the doom, not the expiry; the collection's delete fails.
	now := testTime.Add(time.Minute)
	got, err = ms.RefreshManifest(ctx, repo, m.Digest, now)
	noErr(t, err)
	if got.Doomed != "" || !got.Expired || !got.Touched.Equal(now) || !got.Created.Equal(testTime) || string(got.Body) != string(m.Body) {
		t.Fatalf("refreshed manifest = %+v", got)
	}
	wantErr(t, ms.DeleteDoomedManifest(ctx, repo, m.Digest, "pass-1"), storage.ErrConflict)
	wantErr(t, ms.DoomManifest(ctx, repo, m.Digest, "pass-3", now), storage.ErrConflict)

	// Revived: no marks; expired again; a put clears it.
	noErr(t, ms.ReviveManifest(ctx, repo, m.Digest))
	got, err = ms.GetManifest(ctx, repo, m.Digest)
	noErr(t, err)
	if got.Doomed != "" || got.Expired {
		t.Fatalf("revived manifest = %+v", got)
	}
	// Only the push it names: a manifest pushed again since is not expired.
	wantErr(t, ms.ExpireManifest(ctx, repo, m.Digest, testTime.Add(time.Second)), storage.ErrConflict)
	noErr(t, ms.ExpireManifest(ctx, repo, m.Digest, m.Created))
	got, err = ms.GetManifest(ctx, repo, m.Digest)
	noErr(t, err)
	if !got.Expired || got.Doomed != "" {
		t.Fatalf("expired manifest = %+v", got)
	}
	noErr(t, ms.PutManifest(ctx, repo, m))
	got, err = ms.GetManifest(ctx, repo, m.Digest)
	noErr(t, err)
	if got.Expired || got.Doomed != "" {
		t.Fatalf("manifest put again = %+v", got)
	}

	noErr(t, ms.DoomManifest(ctx, repo, m.Digest, "pass-4", now.Add(time.Second)))
	noErr(t, ms.DeleteDoomedManifest(ctx, repo, m.Digest, "pass-4"))
	_, err = ms.GetManifest(ctx, repo, m.Digest)
	wantErr(t, err, storage.ErrNotFound)
	_, err = ms.RefreshManifest(ctx, repo, m.Digest, now)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.DoomManifest(ctx, repo, m.Digest, "pass-5", now.Add(time.Hour)), storage.ErrNotFound)
	wantErr(t, ms.ExpireManifest(ctx, repo, m.Digest, m.Created), storage.ErrNotFound)
	wantErr(t, ms.ReviveManifest(ctx, repo, m.Digest), storage.ErrNotFound)
	wantErr(t, ms.DeleteDoomedManifest(ctx, repo, m.Digest, "pass-5"), storage.ErrNotFound)
}

// testMetaManifestDoomRace: of a doom and concurrent uses, either the use
// comes last (not doomed) or the doom does; the delete holds only then.
func testMetaManifestDoomRace(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	const repo = "gc/doomrace"
	for i := range 10 {
		m := fullManifest("race" + string(rune('a'+i)))
		m.Created = testTime
		noErr(t, ms.PutManifest(ctx, repo, m))
		var wg sync.WaitGroup
		var doomErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			doomErr = ms.DoomManifest(ctx, repo, m.Digest, "pass", testTime.Add(time.Hour))
		}()
		go func() {
			defer wg.Done()
			_, err := ms.RefreshManifest(ctx, repo, m.Digest, testTime.Add(2*time.Hour))
			noErr(t, err)
		}()
		wg.Wait()
		got, err := ms.GetManifest(ctx, repo, m.Digest)
		noErr(t, err)
		err = ms.DeleteDoomedManifest(ctx, repo, m.Digest, "pass")
		switch {
		case got.Doomed == "pass":
			noErr(t, err)
		case doomErr == nil:
			wantErr(t, err, storage.ErrConflict) // doomed, then used
		default:
			wantErr(t, doomErr, storage.ErrConflict) // used first: too young
			wantErr(t, err, storage.ErrConflict)
		}
	}
}

// testMetaTagIf: a conditional tag delete holds only for the digest and
// time it names.
func testMetaTagIf(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	const repo = "gc/tagif"
	a, b := fullManifest("tag-a"), fullManifest("tag-b")
	tag := storage.Tag{Name: "v1", Digest: a.Digest, Updated: testTime}
	noErr(t, ms.PutTag(ctx, repo, tag))
	got, err := ms.GetTag(ctx, repo, "v1")
	noErr(t, err)
	if got.Digest != a.Digest || !got.Updated.Equal(testTime) {
		t.Fatalf("tag = %+v", got)
	}
	wantErr(t, ms.DeleteTagIf(ctx, repo, storage.Tag{Name: "v1", Digest: b.Digest, Updated: testTime}), storage.ErrConflict)
	wantErr(t, ms.DeleteTagIf(ctx, repo, storage.Tag{Name: "v1", Digest: a.Digest, Updated: testTime.Add(time.Second)}), storage.ErrConflict)
	wantErr(t, ms.DeleteTagIf(ctx, repo, storage.Tag{Name: "v1", Digest: a.Digest}), storage.ErrConflict)
	// Pointed again (same digest, later): the old view no longer holds.
	noErr(t, ms.PutTag(ctx, repo, storage.Tag{Name: "v1", Digest: a.Digest, Updated: testTime.Add(time.Minute)}))
	wantErr(t, ms.DeleteTagIf(ctx, repo, tag), storage.ErrConflict)
	noErr(t, ms.DeleteTagIf(ctx, repo, storage.Tag{Name: "v1", Digest: a.Digest, Updated: testTime.Add(time.Minute)}))
	_, err = ms.GetTag(ctx, repo, "v1")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.DeleteTagIf(ctx, repo, tag), storage.ErrNotFound)

	// A tag from before tags had times matches a zero time.
	noErr(t, ms.PutTag(ctx, repo, storage.Tag{Name: "old", Digest: a.Digest}))
	wantErr(t, ms.DeleteTagIf(ctx, repo, storage.Tag{Name: "old", Digest: a.Digest, Updated: testTime}), storage.ErrConflict)
	noErr(t, ms.DeleteTagIf(ctx, repo, storage.Tag{Name: "old", Digest: a.Digest}))
}
