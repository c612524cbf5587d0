package gc

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// TestDecide is the table test of the retention rules: for each rule, a
// repository and what the rule deletes (tags, then manifests) and keeps.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const grace = 24 * time.Hour
	day := 24 * time.Hour
	// names tells the digests apart in failure messages.
	names := map[digest.Digest]string{}
	d := func(name string) digest.Digest {
		dg := digest.FromString(name)
		names[dg] = name
		return dg
	}
	// man is a manifest called name, pushed age ago, naming refs; opts
	// set a subject, a use, marks.
	type opt func(*storage.Manifest)
	subject := func(s string) opt { return func(m *storage.Manifest) { m.Subject = d(s) } }
	used := func(ago time.Duration) opt { return func(m *storage.Manifest) { m.Touched = now.Add(-ago) } }
	expired := func(m *storage.Manifest) { m.Expired = true }
	doomed := func(m *storage.Manifest) { m.Doomed = "gc-1" }
	man := func(name string, age time.Duration, refs []string, opts ...opt) storage.Manifest {
		m := storage.Manifest{Digest: d(name), Created: now.Add(-age)}
		for _, r := range refs {
			m.Refs = append(m.Refs, d(r))
		}
		for _, o := range opts {
			o(&m)
		}
		return m
	}
	tag := func(name, target string, age time.Duration) storage.Tag {
		return storage.Tag{Name: name, Digest: d(target), Updated: now.Add(-age)}
	}
	sigTag := func(subject, target string, age time.Duration) storage.Tag {
		return tag(strings.Replace(string(d(subject)), ":", "-", 1)+".sig", target, age)
	}
	untagged30d := oci.Retention{Prefix: "r", UntaggedAfter: oci.Duration(30 * day)}
	lastTwoV := oci.Retention{Prefix: "r", KeepTags: []oci.TagKeep{{Pattern: `v\d+`, Last: 2}}}

	for _, tc := range []struct {
		name      string
		rule      oci.Retention
		tags      []storage.Tag
		manifests []storage.Manifest
		// wantTags are the tags the rule expires; wantGone the manifests
		// nothing keeps; wantRevive the kept ones with a mark.
		wantTags, wantGone, wantRevive []string
	}{
		{
			name:      "untagged after: an old untagged manifest goes, a tagged one stays",
			rule:      untagged30d,
			tags:      []storage.Tag{tag("latest", "a", 60*day)},
			manifests: []storage.Manifest{man("a", 60*day, nil), man("old", 31*day, nil)},
			wantGone:  []string{"old"},
		},
		{
			name:      "untagged after: younger than the rule's age, or than grace, stays",
			rule:      oci.Retention{Prefix: "r", UntaggedAfter: oci.Duration(time.Hour)},
			manifests: []storage.Manifest{man("day-old", 29*day/30, nil), man("hour-old", 2*time.Hour, nil), man("old", 2*day, nil)},
			wantGone:  []string{"old"},
		},
		{
			name:      "untagged after: a use counts as a push",
			rule:      untagged30d,
			manifests: []storage.Manifest{man("pulled", 90*day, nil, used(10*day)), man("idle", 90*day, nil, used(40*day))},
			wantGone:  []string{"idle"},
		},
		{
			name: "untagged after: the children of a kept index stay, those of an expired one go",
			rule: untagged30d,
			tags: []storage.Tag{tag("v1", "index", 90*day)},
			manifests: []storage.Manifest{
				man("index", 90*day, []string{"amd64", "arm64", "absent-s390x"}), man("amd64", 90*day, []string{"layer"}), man("arm64", 90*day, nil),
				man("old-index", 90*day, []string{"old-amd64"}), man("old-amd64", 90*day, nil),
			},
			wantGone: []string{"old-amd64", "old-index"},
		},
		{
			name: "untagged after: referrers and digest tags go with their subject",
			rule: untagged30d,
			tags: []storage.Tag{tag("v1", "kept", 90*day), sigTag("kept", "kept-sig", 90*day), sigTag("gone", "gone-sig", 90*day)},
			manifests: []storage.Manifest{
				man("kept", 90*day, nil), man("kept-sbom", 90*day, nil, subject("kept")), man("kept-sig", 90*day, nil),
				man("kept-sbom-sig", 90*day, nil, subject("kept-sbom")),
				man("gone", 90*day, nil), man("gone-sbom", 90*day, nil, subject("gone")), man("gone-sig", 90*day, nil),
			},
			wantGone: []string{"gone", "gone-sbom", "gone-sig"},
		},
		{
			name:      "untagged after: a referrer whose subject is absent goes once past grace",
			rule:      untagged30d,
			manifests: []storage.Manifest{man("orphan-old", 2*day, nil, subject("never")), man("orphan-young", time.Hour, nil, subject("never"))},
			wantGone:  []string{"orphan-old"},
		},
		{
			name: "keep tags: the last two v tags stay, older ones go with their images",
			rule: lastTwoV,
			tags: []storage.Tag{tag("v1", "one", 30*day), tag("v2", "two", 20*day), tag("v3", "three", 10*day), tag("latest", "three", 10*day)},
			manifests: []storage.Manifest{
				man("one", 30*day, nil), man("two", 20*day, nil), man("three", 10*day, nil),
				man("untagged", 300*day, nil), // kept: the rule says nothing of untagged manifests
			},
			wantTags: []string{"v1"},
			wantGone: []string{"one"},
		},
		{
			name:      "keep tags: an expired tag whose image another tag keeps goes alone",
			rule:      lastTwoV,
			tags:      []storage.Tag{tag("v1", "one", 30*day), tag("stable", "one", 30*day), tag("v2", "two", 20*day), tag("v3", "three", 10*day)},
			manifests: []storage.Manifest{man("one", 30*day, nil), man("two", 20*day, nil), man("three", 10*day, nil)},
			wantTags:  []string{"v1"},
		},
		{
			name:      "keep tags: a tag younger than grace stays, beyond the last N or not",
			rule:      oci.Retention{Prefix: "r", KeepTags: []oci.TagKeep{{Pattern: `pr-.*`, Last: 1}}},
			tags:      []storage.Tag{tag("pr-1", "p1", 3*day), tag("pr-2", "p2", time.Hour), tag("pr-3", "p3", time.Minute)},
			manifests: []storage.Manifest{man("p1", 3*day, nil), man("p2", time.Hour, nil), man("p3", time.Minute, nil)},
			wantTags:  []string{"pr-1"},
			wantGone:  []string{"p1"},
		},
		{
			name: "keep tags: a tag two patterns match stays if either keeps it",
			rule: oci.Retention{Prefix: "r", KeepTags: []oci.TagKeep{{Pattern: `v.*`, Last: 1}, {Pattern: `.*-lts`, Last: 5}}},
			tags: []storage.Tag{tag("v1-lts", "one", 30*day), tag("v2", "two", 20*day), tag("v3", "three", 10*day)},
			manifests: []storage.Manifest{
				man("one", 30*day, nil), man("two", 20*day, nil), man("three", 10*day, nil),
			},
			wantTags: []string{"v2"},
			wantGone: []string{"two"},
		},
		{
			name: "keep tags: the pattern matches whole tags, and ties go by name",
			rule: oci.Retention{Prefix: "r", KeepTags: []oci.TagKeep{{Pattern: `v1`, Last: 1}, {Pattern: `b|a`, Last: 1}}},
			tags: []storage.Tag{tag("v10", "ten", 30*day), tag("v1", "one", 30*day), tag("a", "x", 5*day), tag("b", "y", 5*day)},
			manifests: []storage.Manifest{
				man("ten", 30*day, nil), man("one", 30*day, nil), man("x", 5*day, nil), man("y", 5*day, nil),
			},
			wantTags: []string{"b"},
			wantGone: []string{"y"},
		},
		{
			name: "keep tags: an expired index's children, signature and referrers go, unless a kept index names them",
			rule: lastTwoV,
			tags: []storage.Tag{
				tag("v1", "idx1", 30*day), sigTag("idx1", "idx1-sig", 30*day), tag("v2", "idx2", 20*day), tag("v3", "idx3", 10*day),
			},
			manifests: []storage.Manifest{
				man("idx1", 30*day, []string{"amd64-1", "shared"}), man("amd64-1", 30*day, nil), man("shared", 30*day, nil),
				man("idx1-sig", 30*day, nil), man("idx1-sbom", 30*day, nil, subject("idx1")),
				man("idx2", 20*day, []string{"shared"}), man("idx3", 10*day, nil),
			},
			wantTags: []string{"v1"},
			wantGone: []string{"amd64-1", "idx1", "idx1-sbom", "idx1-sig"},
		},
		{
			name:      "keep tags: old tags from before tags had times rank by their manifest's push",
			rule:      oci.Retention{Prefix: "r", KeepTags: []oci.TagKeep{{Pattern: `.*`, Last: 1}}},
			tags:      []storage.Tag{{Name: "a", Digest: d("old")}, {Name: "b", Digest: d("new")}},
			manifests: []storage.Manifest{man("old", 30*day, nil), man("new", 20*day, nil)},
			wantTags:  []string{"a"},
			wantGone:  []string{"old"},
		},
		{
			name: "marks: an expired mark outlives a use; a kept manifest with a mark is revived",
			rule: lastTwoV,
			tags: []storage.Tag{tag("v1", "kept", 2*day)},
			manifests: []storage.Manifest{
				man("was-expired", 30*day, nil, expired, used(2*day)), man("was-doomed", 30*day, nil, doomed, used(2*day)),
				man("kept", 30*day, nil, doomed, expired), man("young-expired", 30*day, nil, expired, used(time.Hour)),
			},
			wantGone:   []string{"was-doomed", "was-expired"},
			wantRevive: []string{"kept"}, // young-expired is kept this pass, marked still
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule, err := tc.rule.Validate()
			if err != nil {
				t.Fatal(err)
			}
			v := repoView{tags: tc.tags, manifests: map[digest.Digest]storage.Manifest{}}
			for _, m := range tc.manifests {
				v.manifests[m.Digest] = m
			}
			vd := decide(rule, v, now, grace)
			nameAll := func(ds []digest.Digest) []string {
				out := []string{}
				for _, x := range ds {
					out = append(out, names[x])
				}
				slices.Sort(out)
				return out
			}
			var gotTags []string
			for _, tg := range vd.expired {
				gotTags = append(gotTags, tg.Name)
			}
			slices.Sort(gotTags)
			for _, c := range []struct {
				what      string
				got, want []string
			}{
				{"expired tags", gotTags, tc.wantTags},
				{"deleted manifests", nameAll(vd.doom), tc.wantGone},
				{"revived manifests", nameAll(vd.revive), tc.wantRevive},
			} {
				if len(c.got)+len(c.want) > 0 && !slices.Equal(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			// Every tag naming a deleted manifest is among the ones to delete.
			for _, x := range vd.doom {
				for _, tg := range v.tags {
					if tg.Digest == x && !slices.Contains(vd.tagsOf[x], tg) {
						t.Errorf("tag %s names deleted %s but is not deleted with it", tg.Name, names[x])
					}
				}
			}
		})
	}
}
