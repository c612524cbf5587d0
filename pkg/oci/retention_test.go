package oci

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRetentionValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Retention
		want string // error substring; empty: valid
	}{
		{"untagged only", Retention{Prefix: "mirror/", UntaggedAfter: Duration(30 * 24 * time.Hour)}, ""},
		{"tags only", Retention{Prefix: "ci", KeepTags: []TagKeep{{Pattern: "pr-.*", Last: 5}}}, ""},
		{"both", Retention{Prefix: "ci", UntaggedAfter: Duration(time.Hour), KeepTags: []TagKeep{{Pattern: "v.*", Last: 1}, {Pattern: ".*", Last: 100000}}}, ""},
		{"nothing", Retention{Prefix: "ci"}, "needs untaggedAfter"},
		{"bad prefix", Retention{Prefix: "Mirror/", UntaggedAfter: 1}, "not a repository name"},
		{"empty prefix", Retention{UntaggedAfter: 1}, "empty"},
		{"negative", Retention{Prefix: "ci", UntaggedAfter: -1}, "negative"},
		{"too long", Retention{Prefix: "ci", UntaggedAfter: Duration(101 * 365 * 24 * time.Hour)}, "100 years"},
		{"empty pattern", Retention{Prefix: "ci", KeepTags: []TagKeep{{Last: 1}}}, "empty pattern"},
		{"bad pattern", Retention{Prefix: "ci", KeepTags: []TagKeep{{Pattern: "v(", Last: 1}}}, "not a regular expression"},
		{"long pattern", Retention{Prefix: "ci", KeepTags: []TagKeep{{Pattern: strings.Repeat("a", 257), Last: 1}}}, "257 bytes"},
		{"pattern at limit", Retention{Prefix: "ci", KeepTags: []TagKeep{{Pattern: strings.Repeat("a", 256), Last: 1}}}, ""},
		{"twice", Retention{Prefix: "ci", KeepTags: []TagKeep{{Pattern: "v.*", Last: 1}, {Pattern: "v.*", Last: 2}}}, "given twice"},
		{"keep none", Retention{Prefix: "ci", KeepTags: []TagKeep{{Pattern: "v.*", Last: 0}}}, "between 1 and 100000"},
		{"keep too many", Retention{Prefix: "ci", KeepTags: []TagKeep{{Pattern: "v.*", Last: 100001}}}, "between 1 and 100000"},
		{"too many rules", Retention{Prefix: "ci", KeepTags: func() []TagKeep {
			var ks []TagKeep
			for i := range 21 {
				ks = append(ks, TagKeep{Pattern: strings.Repeat("x", i+1), Last: 1})
			}
			return ks
		}()}, "limit is 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if strings.HasSuffix(got.Prefix, "/") {
					t.Fatalf("prefix %q not normalized", got.Prefix)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
		bad  bool
	}{
		{in: "30d", want: 30 * 24 * time.Hour, out: "30d"},
		{in: "12h", want: 12 * time.Hour, out: "12h0m0s"},
		{in: "48h", want: 48 * time.Hour, out: "2d"},
		{in: "90m", want: 90 * time.Minute, out: "1h30m0s"},
		{in: "0d", want: 0, out: "0s"},
		{in: "d", bad: true},
		{in: "-1d", bad: true},
		{in: "1.5d", bad: true},
		{in: "soon", bad: true},
		{in: "36501d", bad: true},
	} {
		d, err := ParseDuration(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %v, want an error", tc.in, d)
			}
			continue
		}
		if err != nil || time.Duration(d) != tc.want || d.String() != tc.out {
			t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tc.in, time.Duration(d), d, err, tc.want, tc.out)
		}
	}
	var r Retention
	if err := json.Unmarshal([]byte(`{"prefix":"ci","untaggedAfter":"7d"}`), &r); err != nil || time.Duration(r.UntaggedAfter) != 7*24*time.Hour {
		t.Fatalf("decode: %+v, %v", r, err)
	}
	if err := json.Unmarshal([]byte(`{"prefix":"ci","untaggedAfter":7}`), &r); err == nil {
		t.Fatal("a number decoded as a duration")
	}
	b, _ := json.Marshal(Retention{Prefix: "ci", UntaggedAfter: Duration(7 * 24 * time.Hour)})
	if string(b) != `{"prefix":"ci","untaggedAfter":"7d"}` {
		t.Fatalf("encode: %s", b)
	}
}

func TestResolveRetention(t *testing.T) {
	rs := []Retention{{Prefix: "mirror", UntaggedAfter: 1}, {Prefix: "mirror/ci", UntaggedAfter: 2}, {Prefix: "mirrorx", UntaggedAfter: 3}}
	for repo, want := range map[string]Duration{"mirror": 1, "mirror/app": 1, "mirror/ci": 2, "mirror/ci/x": 2, "mirrorx/a": 3, "other": 0, "mirro": 0} {
		got, ok := ResolveRetention(rs, repo)
		if got.UntaggedAfter != want || ok != (want != 0) {
			t.Errorf("ResolveRetention(%q) = %+v, %v; want untaggedAfter %d", repo, got, ok, want)
		}
	}
}

func TestDigestTagSubject(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for tag, want := range map[string]string{
		"sha256-" + hex + ".sig":             "sha256:" + hex,
		"sha256-" + hex + ".att":             "sha256:" + hex,
		"sha256-" + hex:                      "sha256:" + hex,
		"sha512-" + strings.Repeat("cd", 64): "sha512:" + strings.Repeat("cd", 64),
		"sha256-" + hex[:63] + ".sig":        "",
		"v1.0":                               "",
		"sha256-" + strings.ToUpper(hex):     "",
		"sha256-" + hex + ".":                "",
	} {
		d, ok := DigestTagSubject(tag)
		if string(d) != want || ok != (want != "") {
			t.Errorf("DigestTagSubject(%q) = %q, %v; want %q", tag, d, ok, want)
		}
	}
}
