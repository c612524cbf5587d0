package storagetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

func listTags(t *testing.T, ms storage.MetaStore, repo string, p storage.Page) []storage.Tag {
	t.Helper()
	tags, err := ms.ListTags(t.Context(), repo, p)
	noErr(t, err)
	return tags
}

func testMetaTags(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	_, err := ms.GetTag(ctx, "r", "latest")
	wantErr(t, err, storage.ErrNotFound)

	v1 := storage.Tag{Name: "latest", Digest: testDigest("v1")}
	noErr(t, ms.PutTag(ctx, "r", v1))
	got, err := ms.GetTag(ctx, "r", "latest")
	noErr(t, err)
	if diff := cmp.Diff(got, v1); diff != "" {
		t.Errorf("GetTag mismatch (-got +want):\n%s", diff)
	}

	// The last writer wins.
	v2 := storage.Tag{Name: "latest", Digest: testDigest("v2")}
	noErr(t, ms.PutTag(ctx, "r", v2))
	got, err = ms.GetTag(ctx, "r", "latest")
	noErr(t, err)
	if diff := cmp.Diff(got, v2); diff != "" {
		t.Errorf("GetTag after overwrite mismatch (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(listTags(t, ms, "r", storage.Page{}), []storage.Tag{v2}); diff != "" {
		t.Errorf("ListTags after overwrite mismatch (-got +want):\n%s", diff)
	}

	noErr(t, ms.DeleteTag(ctx, "r", "latest"))
	_, err = ms.GetTag(ctx, "r", "latest")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, ms.DeleteTag(ctx, "r", "latest"), storage.ErrNotFound)
	if diff := cmp.Diff(listTags(t, ms, "r", storage.Page{}), []storage.Tag(nil), equateEmpty); diff != "" {
		t.Errorf("ListTags after delete mismatch (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(listTags(t, ms, "unknown", storage.Page{}), []storage.Tag(nil), equateEmpty); diff != "" {
		t.Errorf("ListTags of an unknown repository mismatch (-got +want):\n%s", diff)
	}
}

func testMetaTagsOrder(t *testing.T, ms storage.MetaStore) {
	// Lexical means byte order: digits < upper case < '_' < lower case.
	names := []string{"latest", "v1", "V1", "1.0", "_x", "a-b", "a.b", "a", "aa", "a_b", "Z", "0"}
	for _, n := range names {
		noErr(t, ms.PutTag(t.Context(), "r", storage.Tag{Name: n, Digest: testDigest(n)}))
	}
	slices.Sort(names)
	var want []storage.Tag
	for _, n := range names {
		want = append(want, storage.Tag{Name: n, Digest: testDigest(n)})
	}
	if diff := cmp.Diff(listTags(t, ms, "r", storage.Page{}), want); diff != "" {
		t.Errorf("ListTags order mismatch (-got +want):\n%s", diff)
	}
}

func testMetaTagsPaging(t *testing.T, ms storage.MetaStore) {
	const n = 250
	var want []storage.Tag
	for i := range n {
		want = append(want, storage.Tag{Name: fmt.Sprintf("t%03d", i), Digest: testDigest(fmt.Sprint(i))})
	}
	// Written in a shuffled order, with neighbours on both sides.
	shuffled := slices.Clone(want)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, tag := range shuffled {
		noErr(t, ms.PutTag(t.Context(), "r", tag))
	}
	for _, repo := range []string{"q", "r/s", "r0", "s"} {
		noErr(t, ms.PutTag(t.Context(), repo, storage.Tag{Name: "t100x", Digest: testDigest(repo)}))
	}

	tests := []struct {
		name string
		page storage.Page
		want []storage.Tag
	}{
		{"all", storage.Page{}, want},
		{"negative limit is no limit", storage.Page{Limit: -1}, want},
		{"first page", storage.Page{Limit: 100}, want[:100]},
		{"second page", storage.Page{After: "t099", Limit: 100}, want[100:200]},
		{"last page", storage.Page{After: "t199", Limit: 100}, want[200:]},
		{"after the last", storage.Page{After: "t249", Limit: 100}, nil},
		{"after is not a tag", storage.Page{After: "t100x", Limit: 3}, want[101:104]},
		{"after sorts before all", storage.Page{After: "a", Limit: 2}, want[:2]},
		{"after sorts after all", storage.Page{After: "u"}, nil},
		{"rest without limit", storage.Page{After: "t247"}, want[248:]},
		{"limit one", storage.Page{After: "t000", Limit: 1}, want[1:2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(listTags(t, ms, "r", tc.page), tc.want, equateEmpty); diff != "" {
				t.Errorf("ListTags(%+v) mismatch (-got +want):\n%s", tc.page, diff)
			}
		})
	}

	// Walking page by page sees every tag once.
	var walked []storage.Tag
	p := storage.Page{Limit: 7}
	for range n {
		page := listTags(t, ms, "r", p)
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		p.After = page[len(page)-1].Name
	}
	if diff := cmp.Diff(walked, want); diff != "" {
		t.Errorf("paged walk mismatch (-got +want):\n%s", diff)
	}
}

func testMetaRepoIsolation(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	for _, repo := range nestedRepos {
		noErr(t, ms.PutTag(ctx, repo, storage.Tag{Name: "shared", Digest: testDigest(repo)}))
		noErr(t, ms.PutTag(ctx, repo, storage.Tag{Name: "c", Digest: testDigest("c " + repo)}))
		noErr(t, ms.PutBlob(ctx, repo, testBlob(repo)))
		noErr(t, ms.PutManifest(ctx, repo, minimalManifest(repo)))
	}
	for _, repo := range nestedRepos {
		want := []storage.Tag{
			{Name: "c", Digest: testDigest("c " + repo)},
			{Name: "shared", Digest: testDigest(repo)},
		}
		if diff := cmp.Diff(listTags(t, ms, repo, storage.Page{}), want); diff != "" {
			t.Errorf("ListTags(%q) mismatch (-got +want):\n%s", repo, diff)
		}
		if diff := cmp.Diff(listTags(t, ms, repo, storage.Page{After: "c"}), want[1:]); diff != "" {
			t.Errorf("ListTags(%q, after c) mismatch (-got +want):\n%s", repo, diff)
		}
		got, err := ms.GetTag(ctx, repo, "shared")
		noErr(t, err)
		if diff := cmp.Diff(got, want[1]); diff != "" {
			t.Errorf("GetTag(%q) mismatch (-got +want):\n%s", repo, diff)
		}
		for _, other := range nestedRepos {
			if other == repo {
				continue
			}
			_, err := ms.GetBlob(ctx, repo, testBlob(other).Digest)
			wantErr(t, err, storage.ErrNotFound)
			_, err = ms.GetManifest(ctx, repo, testDigest(other))
			wantErr(t, err, storage.ErrNotFound)
		}
	}
	// Deleting in one repository leaves its neighbours alone.
	noErr(t, ms.DeleteTag(ctx, "a/b", "shared"))
	noErr(t, ms.DeleteBlob(ctx, "a/b", testBlob("a/b").Digest))
	for _, repo := range nestedRepos {
		n := 2
		if repo == "a/b" {
			n = 1
		}
		if got := listTags(t, ms, repo, storage.Page{}); len(got) != n {
			t.Errorf("ListTags(%q) after deleting a/b:shared: got %v, want %d tags", repo, got, n)
		}
	}
	// Tags of "a/b" and "a/b/c" must not show up under a repository that
	// is a prefix of them, even one never written.
	if diff := cmp.Diff(listTags(t, ms, "a/", storage.Page{}), []storage.Tag(nil), equateEmpty); diff != "" {
		t.Errorf("ListTags(%q) mismatch (-got +want):\n%s", "a/", diff)
	}
}

// testReferrer has every field set.
func testReferrer(s string) storage.Referrer {
	return storage.Referrer{
		Digest:       testDigest(s),
		MediaType:    "application/vnd.oci.image.manifest.v1+json",
		Size:         int64(500 + len(s)),
		ArtifactType: "application/vnd.example." + s,
		Annotations:  map[string]string{"created-by": s},
	}
}

func listReferrers(t *testing.T, ms storage.MetaStore, repo string, subject digest.Digest, p storage.Page) []storage.Referrer {
	t.Helper()
	refs, err := ms.ListReferrers(t.Context(), repo, subject, p)
	noErr(t, err)
	return refs
}

func testMetaReferrers(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	subject := testDigest("subject")
	var want []storage.Referrer
	for i := range 12 {
		r := testReferrer(fmt.Sprint("ref", i))
		if i == 3 {
			r.ArtifactType, r.Annotations = "", nil
		}
		noErr(t, ms.PutReferrer(ctx, "r", subject, r))
		noErr(t, ms.PutReferrer(ctx, "r", subject, r)) // idempotent
		want = append(want, r)
	}
	slices.SortFunc(want, func(a, b storage.Referrer) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })

	if diff := cmp.Diff(listReferrers(t, ms, "r", subject, storage.Page{}), want, equateEmpty); diff != "" {
		t.Errorf("ListReferrers mismatch (-got +want):\n%s", diff)
	}
	after := want[4].Digest.String()
	if diff := cmp.Diff(listReferrers(t, ms, "r", subject, storage.Page{After: after, Limit: 5}), want[5:10], equateEmpty); diff != "" {
		t.Errorf("ListReferrers page mismatch (-got +want):\n%s", diff)
	}
	last := want[len(want)-1].Digest.String()
	if diff := cmp.Diff(listReferrers(t, ms, "r", subject, storage.Page{After: last}), []storage.Referrer(nil), equateEmpty); diff != "" {
		t.Errorf("ListReferrers after the last mismatch (-got +want):\n%s", diff)
	}

	noErr(t, ms.DeleteReferrer(ctx, "r", subject, want[0].Digest))
	noErr(t, ms.DeleteReferrer(ctx, "r", subject, want[0].Digest)) // missing is fine
	noErr(t, ms.DeleteReferrer(ctx, "r", testDigest("no subject"), want[1].Digest))
	if diff := cmp.Diff(listReferrers(t, ms, "r", subject, storage.Page{}), want[1:], equateEmpty); diff != "" {
		t.Errorf("ListReferrers after delete mismatch (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(listReferrers(t, ms, "r", testDigest("no subject"), storage.Page{}), []storage.Referrer(nil), equateEmpty); diff != "" {
		t.Errorf("ListReferrers of a subject without referrers mismatch (-got +want):\n%s", diff)
	}
}

func testMetaReferrersIsolation(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	s1, s2 := testDigest("s1"), digest.SHA512.FromString("s1")
	for _, repo := range nestedRepos {
		noErr(t, ms.PutReferrer(ctx, repo, s1, testReferrer(repo+" on s1")))
		noErr(t, ms.PutReferrer(ctx, repo, s2, testReferrer(repo+" on s2")))
	}
	for _, repo := range nestedRepos {
		for _, s := range []struct {
			subject digest.Digest
			name    string
		}{{s1, " on s1"}, {s2, " on s2"}} {
			want := []storage.Referrer{testReferrer(repo + s.name)}
			if diff := cmp.Diff(listReferrers(t, ms, repo, s.subject, storage.Page{}), want, equateEmpty); diff != "" {
				t.Errorf("ListReferrers(%q, %s) mismatch (-got +want):\n%s", repo, s.subject, diff)
			}
		}
	}
}

func testMetaRepositories(t *testing.T, ms storage.MetaStore) {
	ctx := t.Context()
	list := func(p storage.Page) []string {
		t.Helper()
		repos, err := ms.ListRepositories(ctx, p)
		noErr(t, err)
		return repos
	}
	if diff := cmp.Diff(list(storage.Page{}), []string(nil), equateEmpty); diff != "" {
		t.Errorf("ListRepositories of an empty store mismatch (-got +want):\n%s", diff)
	}
	names := append(slices.Clone(nestedRepos), "library/alpine", "b", "z/z", "0")
	for _, n := range names {
		noErr(t, ms.PutRepository(ctx, n))
		noErr(t, ms.PutRepository(ctx, n)) // idempotent
	}
	// Existence is exact: neither a prefix nor an extension of a recorded
	// name counts.
	for _, tc := range []struct {
		repo string
		want bool
	}{{"library/alpine", true}, {"b", true}, {"library", false}, {"library/alpine/x", false}, {"library/alpin", false}, {"c", false}} {
		got, err := ms.HasRepository(ctx, tc.repo)
		noErr(t, err)
		if got != tc.want {
			t.Errorf("HasRepository(%q) = %v, want %v", tc.repo, got, tc.want)
		}
	}
	want := slices.Clone(names)
	slices.Sort(want)

	tests := []struct {
		name string
		page storage.Page
		want []string
	}{
		{"all", storage.Page{}, want},
		{"first page", storage.Page{Limit: 3}, want[:3]},
		{"after a/b", storage.Page{After: "a/b", Limit: 2}, want[slices.Index(want, "a/b")+1:][:2]},
		{"after a missing name", storage.Page{After: "a/b/", Limit: 1}, []string{"a/b/c"}},
		{"after the last", storage.Page{After: want[len(want)-1]}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(list(tc.page), tc.want, equateEmpty); diff != "" {
				t.Errorf("ListRepositories(%+v) mismatch (-got +want):\n%s", tc.page, diff)
			}
		})
	}

	// Repositories with links are a list of their own: neither the catalog
	// nor HasRepository sees them.
	for _, n := range []string{"linked/only", "b", "a/b"} {
		noErr(t, ms.PutLinkedRepository(ctx, n))
		noErr(t, ms.PutLinkedRepository(ctx, n))
	}
	linked, err := ms.ListLinkedRepositories(ctx, storage.Page{})
	noErr(t, err)
	if diff := cmp.Diff(linked, []string{"a/b", "b", "linked/only"}); diff != "" {
		t.Errorf("ListLinkedRepositories mismatch (-got +want):\n%s", diff)
	}
	page, err := ms.ListLinkedRepositories(ctx, storage.Page{After: "a/b", Limit: 1})
	noErr(t, err)
	if diff := cmp.Diff(page, []string{"b"}); diff != "" {
		t.Errorf("ListLinkedRepositories after a/b mismatch (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(list(storage.Page{}), want, equateEmpty); diff != "" {
		t.Errorf("the catalog changed with linked repositories (-got +want):\n%s", diff)
	}
	if has, err := ms.HasRepository(ctx, "linked/only"); err != nil || has {
		t.Errorf("HasRepository(linked/only) = %v, %v", has, err)
	}
}
