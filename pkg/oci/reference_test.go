package oci_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/skiff-registry/skiff/pkg/oci"
)

func TestValidateTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tag     string
		wantErr string
	}{
		{name: "latest", tag: "latest"},
		{name: "semver", tag: "v1.2.3-rc.1"},
		{name: "upper", tag: "Release_2026"},
		{name: "leading underscore", tag: "_x"},
		{name: "single char", tag: "a"},
		{name: "max length", tag: strings.Repeat("a", oci.MaxTagLength)},
		{name: "empty", tag: "", wantErr: "must not be empty"},
		{name: "too long", tag: strings.Repeat("a", oci.MaxTagLength+1), wantErr: "129 characters long; the limit is 128"},
		{name: "leading dot", tag: ".x", wantErr: "must start with a letter, digit or '_'"},
		{name: "leading dash", tag: "-x", wantErr: "must start with a letter, digit or '_'"},
		{name: "slash", tag: "a/b", wantErr: "invalid character '/' at offset 1"},
		{name: "plus", tag: "1.0+build", wantErr: "invalid character '+'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := oci.ValidateTag(tc.tag)
			if tc.wantErr == "" {
				checkCode(t, err, "")
				return
			}
			e := checkCode(t, err, oci.CodeManifestInvalid)
			if !strings.Contains(e.Message, tc.wantErr) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tc.wantErr)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	t.Parallel()
	const sha = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name     string
		in       string
		want     oci.Reference
		wantCode oci.ErrorCode
	}{
		{name: "tag", in: "latest", want: oci.Reference{Tag: "latest"}},
		{name: "digest", in: sha, want: oci.Reference{Digest: digest.Digest(sha)}},
		{name: "bad digest", in: "sha256:baddigeststring", wantCode: oci.CodeDigestInvalid},
		{name: "colon means digest", in: "v1:2", wantCode: oci.CodeDigestInvalid},
		{name: "bad tag", in: "-x", wantCode: oci.CodeManifestInvalid},
		{name: "empty", in: "", wantCode: oci.CodeManifestInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := oci.ParseReference(tc.in)
			checkCode(t, err, tc.wantCode)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ParseReference(%q) (-got +want):\n%s", tc.in, diff)
			}
			if err == nil {
				if got.String() != tc.in {
					t.Errorf("String() = %q, want %q", got.String(), tc.in)
				}
				if got.IsDigest() != (tc.want.Digest != "") {
					t.Errorf("IsDigest() = %v", got.IsDigest())
				}
			}
		})
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range seeds(f, "references.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := oci.ParseReference(s)
		if err != nil {
			var code oci.ErrorCode = oci.CodeManifestInvalid
			if strings.Contains(s, ":") {
				code = oci.CodeDigestInvalid
			}
			checkCode(t, err, code)
			return
		}
		if (r.Tag == "") == (r.Digest == "") {
			t.Fatalf("ParseReference(%q) = %+v, want exactly one of Tag and Digest", s, r)
		}
		if r.String() != s {
			t.Fatalf("String() = %q, want %q", r.String(), s)
		}
		again, err := oci.ParseReference(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip of %q = %+v, %v", s, again, err)
		}
	})
}
