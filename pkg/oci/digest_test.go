package oci_test

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/skiff-registry/skiff/pkg/oci"
)

func TestParseDigest(t *testing.T) {
	t.Parallel()
	const (
		sha256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		sha512Hex = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
	)
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "sha256", in: "sha256:" + sha256Hex},
		{name: "sha512", in: "sha512:" + sha512Hex},
		{name: "sha384 refused", in: "sha384:" + strings.Repeat("a", 96), wantErr: `unsupported digest algorithm "sha384"`},
		{name: "unknown algorithm", in: "md5:d41d8cd98f00b204e9800998ecf8427e", wantErr: "unsupported digest algorithm"},
		{name: "upper-case hex", in: "sha256:" + strings.ToUpper(sha256Hex), wantErr: "must be lower case"},
		{name: "upper-case algorithm", in: "SHA256:" + sha256Hex, wantErr: "malformed digest"},
		{name: "too short", in: "sha256:" + sha256Hex[:63], wantErr: "must be 64 characters long, got 63"},
		{name: "too long", in: "sha256:" + sha256Hex + "0", wantErr: "must be 64 characters long, got 65"},
		{name: "sha512 length", in: "sha512:" + sha256Hex, wantErr: "must be 128 characters long, got 64"},
		{name: "conformance bad digest", in: "sha256:baddigeststring", wantErr: "must be 64 characters long"},
		{name: "non-hex", in: "sha256:" + strings.Repeat("g", 64), wantErr: "only 0-9 and a-f"},
		{name: "no colon", in: sha256Hex, wantErr: "want <algorithm>:<hex>"},
		{name: "empty hex", in: "sha256:", wantErr: "malformed digest"},
		{name: "empty algorithm", in: ":" + sha256Hex, wantErr: "malformed digest"},
		{name: "empty", in: "", wantErr: "must not be empty"},
		{name: "long input is truncated", in: "sha256:" + strings.Repeat("y", 10000), wantErr: "(10007 bytes)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := oci.ParseDigest(tc.in)
			if tc.wantErr == "" {
				checkCode(t, err, "")
				if got != digest.Digest(tc.in) {
					t.Errorf("ParseDigest(%q) = %q", tc.in, got)
				}
				return
			}
			e := checkCode(t, err, oci.CodeDigestInvalid)
			if !strings.Contains(e.Message, tc.wantErr) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tc.wantErr)
			}
			if len(e.Message) > 300 {
				t.Errorf("message is %d bytes; input must not be echoed in full", len(e.Message))
			}
		})
	}
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range seeds(f, "digests.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := oci.ParseDigest(s)
		if err != nil {
			checkCode(t, err, oci.CodeDigestInvalid)
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDigest(%q).String() = %q", s, d.String())
		}
		if alg := d.Algorithm(); alg != digest.SHA256 && alg != digest.SHA512 {
			t.Fatalf("ParseDigest(%q) accepted algorithm %q", s, alg)
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted digest %q fails go-digest validation: %v", s, err)
		}
		if again, err := oci.ParseDigest(d.String()); err != nil || again != d {
			t.Fatalf("round trip of %q = %q, %v", s, again, err)
		}
	})
}
