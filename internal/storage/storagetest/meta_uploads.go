package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/internal/storage"
)

// fullUpload has every field set.
func fullUpload(id string) storage.Upload {
	return storage.Upload{
		ID:      id,
		Repo:    "library/alpine",
		Offset:  12 << 20,
		Version: 1,
		HashState: map[string][]byte{
			"sha256": {0x73, 0x68, 0x61, 0x03, 0x00, 0xff, 0x10},
			"sha512": {0x01},
		},
		Key:         "uploads/" + id,
		MultipartID: "mp-" + id,
		Parts: []storage.Part{
			{Number: 1, ETag: `"etag-1"`, Size: storage.MinPartSize},
			{Number: 2, ETag: `"etag-2"`, Size: storage.MinPartSize + 7},
		},
		Tail: []storage.Segment{
			{Key: "uploads/" + id + "/seg-1", Size: 100},
			{Key: "uploads/" + id + "/seg-2", Size: 1},
		},
		Claim:      "request-42",
		ClaimUntil: testTime.Add(30 * time.Second),
		Started:    testTime.Add(-time.Hour),
		Expires:    testTime.Add(24 * time.Hour),
		Done:       true,
	}
}

func getUpload(t *testing.T, ms storage.MetaStore, id string) storage.Upload {
	t.Helper()
	u, err := ms.GetUpload(t.Context(), id)
	noErr(t, err)
	return u
}

func testMetaUploads(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	_, err := ms.GetUpload(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound)

	u := fullUpload("u1")
	noErr(t, ms.CreateUpload(ctx, u))
	if diff := cmp.Diff(getUpload(t, ms, "u1"), u, equateEmpty); diff != "" {
		t.Errorf("GetUpload mismatch (-got +want):\n%s", diff)
	}
	dup := fullUpload("u1")
	dup.Repo = "other"
	wantErr(t, ms.CreateUpload(ctx, dup), storage.ErrExists)
	if diff := cmp.Diff(getUpload(t, ms, "u1"), u, equateEmpty); diff != "" {
		t.Errorf("GetUpload after a duplicate create mismatch (-got +want):\n%s", diff)
	}

	// A fresh session with only the required fields; zero times stay zero.
	bare := storage.Upload{ID: "u2", Repo: "r", Started: testTime, Expires: testTime.Add(time.Hour)}
	noErr(t, ms.CreateUpload(ctx, bare))
	if diff := cmp.Diff(getUpload(t, ms, "u2"), bare, equateEmpty); diff != "" {
		t.Errorf("GetUpload of a bare session mismatch (-got +want):\n%s", diff)
	}

	// Update with the current version: stored with Version prev+1, whatever
	// Version the caller set.
	next := u
	next.Offset += 5 << 20
	next.Parts = append(next.Parts, storage.Part{Number: 3, ETag: `"etag-3"`, Size: 5 << 20})
	next.Tail = nil
	next.Claim, next.ClaimUntil = "", time.Time{}
	noErr(t, ms.UpdateUpload(ctx, next, 1))
	next.Version = 2
	if diff := cmp.Diff(getUpload(t, ms, "u1"), next, equateEmpty); diff != "" {
		t.Errorf("GetUpload after update mismatch (-got +want):\n%s", diff)
	}

	// A stale version loses and changes nothing.
	stale := u
	stale.Offset = 1
	wantErr(t, ms.UpdateUpload(ctx, stale, 1), storage.ErrConflict)
	if diff := cmp.Diff(getUpload(t, ms, "u1"), next, equateEmpty); diff != "" {
		t.Errorf("GetUpload after a stale update mismatch (-got +want):\n%s", diff)
	}
	next.Version = 99 // ignored: the stored version becomes prev+1
	noErr(t, ms.UpdateUpload(ctx, next, 2))
	if got := getUpload(t, ms, "u1").Version; got != 3 {
		t.Errorf("Version after the second update: got %d, want 3", got)
	}

	wantErr(t, ms.UpdateUpload(ctx, fullUpload("never"), 1), storage.ErrConflict)
	_, err = ms.GetUpload(ctx, "never")
	wantErr(t, err, storage.ErrNotFound)

	// The other session is untouched.
	if diff := cmp.Diff(getUpload(t, ms, "u2"), bare, equateEmpty); diff != "" {
		t.Errorf("GetUpload(u2) mismatch (-got +want):\n%s", diff)
	}
}

func testMetaUploadsConcurrent(t *testing.T, ms storage.MetaStore) {
	u := fullUpload("race")
	noErr(t, ms.CreateUpload(t.Context(), u))
	const writers = 20
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			w := u
			w.Offset = int64(i)
			w.Claim = fmt.Sprint("writer-", i)
			// Version left at 1 on purpose: the store must bump it.
			errs[i] = ms.UpdateUpload(t.Context(), w, 1)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("writer %d: got %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	got := getUpload(t, ms, "race")
	if got.Version != 2 || got.Offset != int64(winner) || got.Claim != fmt.Sprint("writer-", winner) {
		t.Errorf("stored session: version %d, offset %d, claim %q; want the winner %d at version 2",
			got.Version, got.Offset, got.Claim, winner)
	}
}

func getSetting(t *testing.T, ms storage.MetaStore, key string) storage.Setting {
	t.Helper()
	s, err := ms.GetSetting(t.Context(), key)
	noErr(t, err)
	return s
}

func testMetaSettings(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	_, err := ms.GetSetting(ctx, "repo/r/index")
	wantErr(t, err, storage.ErrNotFound)

	s := storage.Setting{Key: "repo/r/index", Value: []byte(`{"policy":"a","n":1}`)}
	wantErr(t, ms.PutSetting(ctx, s, 1), storage.ErrConflict) // does not exist yet
	noErr(t, ms.PutSetting(ctx, s, 0))
	want := storage.Setting{Key: s.Key, Value: s.Value, Version: 1}
	if diff := cmp.Diff(getSetting(t, ms, s.Key), want); diff != "" {
		t.Errorf("GetSetting mismatch (-got +want):\n%s", diff)
	}
	wantErr(t, ms.PutSetting(ctx, storage.Setting{Key: s.Key, Value: []byte(`{}`)}, 0), storage.ErrConflict)

	s2 := storage.Setting{Key: s.Key, Value: []byte(`{"policy":"b"}`), Version: 42}
	noErr(t, ms.PutSetting(ctx, s2, 1))
	want = storage.Setting{Key: s.Key, Value: s2.Value, Version: 2}
	if diff := cmp.Diff(getSetting(t, ms, s.Key), want); diff != "" {
		t.Errorf("GetSetting after update mismatch (-got +want):\n%s", diff)
	}
	wantErr(t, ms.PutSetting(ctx, s, 1), storage.ErrConflict) // stale
	wantErr(t, ms.PutSetting(ctx, s, 3), storage.ErrConflict) // from the future
	if diff := cmp.Diff(getSetting(t, ms, s.Key), want); diff != "" {
		t.Errorf("GetSetting after stale puts mismatch (-got +want):\n%s", diff)
	}

	wantErr(t, ms.DeleteSetting(ctx, s.Key, 1), storage.ErrConflict)
	noErr(t, ms.DeleteSetting(ctx, s.Key, 2))
	_, err = ms.GetSetting(ctx, s.Key)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.DeleteSetting(ctx, s.Key, 2), storage.ErrNotFound)
	wantErr(t, ms.PutSetting(ctx, s, 2), storage.ErrConflict) // deleted
	// Created again from scratch.
	noErr(t, ms.PutSetting(ctx, s, 0))
	if got := getSetting(t, ms, s.Key).Version; got != 1 {
		t.Errorf("Version after re-create: got %d, want 1", got)
	}
}

func testMetaSettingsConcurrent(t *testing.T, ms storage.MetaStore) {
	noErr(t, ms.PutSetting(t.Context(), storage.Setting{Key: "k", Value: []byte(`0`)}, 0))
	const writers = 20
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = ms.PutSetting(t.Context(), storage.Setting{Key: "k", Value: fmt.Appendf(nil, "%d", i)}, 1)
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("writer %d: got %v, want nil or ErrConflict", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d writers won, want exactly 1", wins)
	}
	if got := getSetting(t, ms, "k").Version; got != 2 {
		t.Errorf("Version: got %d, want 2", got)
	}
}

func testMetaSettingsList(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	keys := []string{"repo/b/index", "repo/a/index", "global", "repo/a/index2", "repo/a", "Z"}
	for _, k := range keys {
		noErr(t, ms.PutSetting(ctx, storage.Setting{Key: k, Value: []byte(`"` + k + `"`)}, 0))
	}
	noErr(t, ms.PutSetting(ctx, storage.Setting{Key: "global", Value: []byte(`"v2"`)}, 1))
	want := []storage.Setting{
		{Key: "Z", Value: []byte(`"Z"`), Version: 1},
		{Key: "global", Value: []byte(`"v2"`), Version: 2},
		{Key: "repo/a", Value: []byte(`"repo/a"`), Version: 1},
		{Key: "repo/a/index", Value: []byte(`"repo/a/index"`), Version: 1},
		{Key: "repo/a/index2", Value: []byte(`"repo/a/index2"`), Version: 1},
		{Key: "repo/b/index", Value: []byte(`"repo/b/index"`), Version: 1},
	}
	tests := []struct {
		name   string
		prefix string
		page   storage.Page
		want   []storage.Setting
	}{
		{"all", "", storage.Page{}, want},
		{"first page", "", storage.Page{Limit: 2}, want[:2]},
		{"second page", "", storage.Page{After: "global", Limit: 2}, want[2:4]},
		{"after a missing key", "", storage.Page{After: "repo/a/", Limit: 1}, want[3:4]},
		{"after the last", "", storage.Page{After: "repo/b/index"}, nil},
		{"a prefix", "repo/a", storage.Page{}, want[2:5]},
		{"a prefix, after a key under it", "repo/a/", storage.Page{After: "index"}, want[4:5]},
		{"a prefix, a page", "repo/", storage.Page{Limit: 2}, want[2:4]},
		{"a prefix no key has", "repo/c/", storage.Page{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ms.ListSettings(ctx, tc.prefix, tc.page)
			noErr(t, err)
			if diff := cmp.Diff(got, tc.want, equateEmpty); diff != "" {
				t.Errorf("ListSettings(%q, %+v) mismatch (-got +want):\n%s", tc.prefix, tc.page, diff)
			}
		})
	}
	var each []string
	noErr(t, storage.EachSetting(ctx, ms, "repo/", func(s storage.Setting) error { each = append(each, s.Key); return nil }))
	if diff := cmp.Diff(each, []string{"repo/a", "repo/a/index", "repo/a/index2", "repo/b/index"}); diff != "" {
		t.Errorf("EachSetting(repo/) mismatch (-got +want):\n%s", diff)
	}
}
