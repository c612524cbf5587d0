package mirror

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSet(t *testing.T) {
	t.Parallel()
	set, err := ParseSet([]byte(`# three images
defaults:
  platforms: [linux/amd64]
  referrers: true
mirrors:
  - source: up.example/org/app
    target: reg.example/mirror/app
    tags: 'v1\.[0-9]+'
  - source: up.example/library/alpine:3.20
    target: reg.example/mirror/alpine
    platforms: [linux/amd64, linux/arm64/v8]
    digestTags: true
  - source: up.example/tools/cli@sha256:` + strings.Repeat("a", 64) + `
    target: reg.example/mirror/cli
    referrers: false
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Rule{Source: "up.example/org/app", Target: "reg.example/mirror/app", Tags: `v1\.[0-9]+`, Platforms: []string{"linux/amd64"}, Referrers: true}, 6, 0},
		{Rule{Source: "up.example/library/alpine:3.20", Target: "reg.example/mirror/alpine", Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Referrers: true, DigestTags: true}, 9, 1},
		{Rule{Source: "up.example/tools/cli@sha256:" + strings.Repeat("a", 64), Target: "reg.example/mirror/cli", Platforms: []string{"linux/amd64"}}, 13, 2},
	}
	if diff := cmp.Diff(want, set.Entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

// TestParseSetMistakes: every mistake in a set is one error naming its
// line (and the rule), and the set is refused whole.
func TestParseSetMistakes(t *testing.T) {
	t.Parallel()
	const ok = "  - source: up.example/a/b:v1\n    target: reg.example/m/b\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"not yaml", "mirrors: [\n", []string{"not a mirror set", "line"}},
		{"a list", "- a\n", []string{"want a mapping with mirrors:"}},
		{"no mirrors", "defaults: {referrers: true}\n", []string{"line 1: the mirror set has no mirrors:"}},
		{"empty mirrors", "mirrors: []\n", []string{"line 1: mirrors: the list is empty"}},
		{"unknown top field", "mirrorz: []\nmirrors:\n" + ok, []string{`line 1: the mirror set: unknown field "mirrorz" (want defaults, mirrors)`}},
		{"unknown rule field", "mirrors:\n" + ok + "    sorce: x\n", []string{`line 4: mirrors[0]: unknown field "sorce"`}},
		{"field twice", "mirrors:\n" + ok + "    target: reg.example/m/c\n", []string{"line 4: mirrors[0]: target given twice"}},
		{"unknown platform", "mirrors:\n" + ok + "    platforms: [linux/amd46]\n", []string{`line 2: mirrors[0] (up.example/a/b:v1): platform "linux/amd46": unknown architecture "amd46"`}},
		{"platforms not a list", "mirrors:\n" + ok + "    platforms: linux/amd64\n", []string{"line 4: mirrors[0].platforms: want a list"}},
		{"bad default platform", "defaults:\n  platforms: [plan10/amd64]\nmirrors:\n" + ok, []string{`line 4: mirrors[0] (up.example/a/b:v1): platform "plan10/amd64": unknown operating system`}},
		{"default not a rule field", "defaults:\n  source: x\nmirrors:\n" + ok, []string{`line 2: defaults: unknown field "source" (want platforms, referrers, digestTags)`}},
		{"referrers not a bool", "mirrors:\n" + ok + "    referrers: yes please\n", []string{"line 4: mirrors[0].referrers: want true or false"}},
		{"no source", "mirrors:\n  - target: reg.example/m/b\n", []string{"line 2: mirrors[0] (): no source"}},
		{"no target", "mirrors:\n  - source: up.example/a/b:v1\n", []string{"line 2: mirrors[0] (up.example/a/b:v1): no target"}},
		{"repository without tags", "mirrors:\n  - source: up.example/a/b\n    target: reg.example/m/b\n", []string{"line 2: mirrors[0] (up.example/a/b): source \"up.example/a/b\" names a repository, not an image"}},
		{"tags on an image", "mirrors:\n" + ok + "    tags: v.*\n", []string{"line 2: mirrors[0] (up.example/a/b:v1): source \"up.example/a/b:v1\" must be a repository"}},
		{"bad tags", "mirrors:\n  - source: up.example/a/b\n    target: reg.example/m/b\n    tags: 'v['\n", []string{`line 2: mirrors[0] (up.example/a/b): tags: "v[" is not a regular expression`}},
		{"no registry", "mirrors:\n  - source: alpine:3.20\n    target: reg.example/m/b\n", []string{`line 2: mirrors[0] (alpine:3.20): source "alpine:3.20" must name its registry`}},
		{"two mistakes", "mirrors:\n  - source: up.example/a/b:v1\n  - target: reg.example/m/b\n", []string{"line 2: mirrors[0] (up.example/a/b:v1): no target", "line 3: mirrors[1] (): no source"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set, err := ParseSet([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted: %+v", set)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if len(set.Entries) != 0 {
				t.Errorf("a refused set has entries: %+v", set.Entries)
			}
		})
	}
}
