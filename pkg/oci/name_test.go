package oci_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// nameGrammar is the distribution-spec grammar, used as the oracle for the
// hand-written validator.
var nameGrammar = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

func TestValidateRepository(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		repo    string
		wantErr string // substring of the message; "" means valid
	}{
		{name: "simple", repo: "ubuntu"},
		{name: "nested", repo: "library/ubuntu"},
		{name: "deep", repo: "a/b/c/d/e"},
		{name: "single char", repo: "a"},
		{name: "digits", repo: "0/1"},
		{name: "dot", repo: "registry.example.com/app"},
		{name: "one underscore", repo: "a_b"},
		{name: "two underscores", repo: "a__b"},
		{name: "dash run", repo: "a---b"},
		{name: "max length", repo: strings.Repeat("a", oci.MaxRepositoryLength)},
		{name: "empty", repo: "", wantErr: "must not be empty"},
		{name: "too long", repo: strings.Repeat("a", oci.MaxRepositoryLength+1), wantErr: "256 characters long; the limit is 255"},
		{name: "upper case", repo: "Library/ubuntu", wantErr: "must be lower case"},
		{name: "dot dot", repo: "foo..bar", wantErr: `must not contain ".."`},
		{name: "dot dot component", repo: "a/../b", wantErr: "must start and end with a lower-case letter or digit"},
		{name: "three underscores", repo: "a___b", wantErr: "more than two '_'"},
		{name: "mixed separators", repo: "a._b", wantErr: `separator "._"`},
		{name: "trailing slash", repo: "a/b/", wantErr: "must not end with '/'"},
		{name: "leading slash", repo: "/a", wantErr: "must not start with '/'"},
		{name: "double slash", repo: "a//b", wantErr: "empty path component"},
		{name: "trailing dash", repo: "a-", wantErr: "must start and end"},
		{name: "leading dot", repo: ".a", wantErr: "must start and end"},
		{name: "colon", repo: "a:b", wantErr: `invalid character ':' at offset 1`},
		{name: "space", repo: "a b", wantErr: "invalid character ' '"},
		{name: "non-ascii", repo: "caf\u00e9", wantErr: "invalid character 'é'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := oci.ValidateRepository(tc.repo)
			if tc.wantErr == "" {
				checkCode(t, err, "")
				return
			}
			e := checkCode(t, err, oci.CodeNameInvalid)
			if !strings.Contains(e.Message, tc.wantErr) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tc.wantErr)
			}
		})
	}
}

func FuzzValidateRepository(f *testing.F) {
	for _, s := range seeds(f, "names.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := oci.ValidateRepository(name)
		want := len(name) <= oci.MaxRepositoryLength && nameGrammar.MatchString(name)
		if (err == nil) != want {
			t.Fatalf("ValidateRepository(%q) = %v, grammar says valid=%v", name, err, want)
		}
		if err != nil {
			checkCode(t, err, oci.CodeNameInvalid)
		}
	})
}
