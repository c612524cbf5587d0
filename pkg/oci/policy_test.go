package oci

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      Policy
		want    Policy
		wantErr string
	}{
		{"defaults", Policy{Prefix: "mirror/"}, Policy{Prefix: "mirror", IndexChildren: "all", ImageBlobs: "required"}, ""},
		{"sparse", Policy{Prefix: "mirror", IndexChildren: "none", ImageBlobs: "optional"}, Policy{Prefix: "mirror", IndexChildren: "none", ImageBlobs: "optional"}, ""},
		{"platforms canonical", Policy{Prefix: "a/b", IndexChildren: "platforms", Platforms: []string{"linux/arm64/v8", "linux/amd64", "linux/amd64"}},
			Policy{Prefix: "a/b", IndexChildren: "platforms", Platforms: []string{"linux/amd64", "linux/arm64/v8"}, ImageBlobs: "required"}, ""},
		{"os.version", Policy{Prefix: "w", IndexChildren: "platforms", Platforms: []string{"windows/amd64:10.0.17763"}},
			Policy{Prefix: "w", IndexChildren: "platforms", Platforms: []string{"windows/amd64:10.0.17763"}, ImageBlobs: "required"}, ""},
		{"empty prefix", Policy{Prefix: ""}, Policy{}, "empty"},
		{"slash prefix", Policy{Prefix: "/"}, Policy{}, "empty"},
		{"invalid prefix", Policy{Prefix: "Mirror/"}, Policy{}, "not a repository name"},
		{"dot-dot prefix", Policy{Prefix: "a/../b"}, Policy{}, "not a repository name"},
		{"unknown mode", Policy{Prefix: "m", IndexChildren: "some"}, Policy{}, "unknown index-children mode"},
		{"unknown blobs mode", Policy{Prefix: "m", ImageBlobs: "maybe"}, Policy{}, "unknown image-blobs mode"},
		{"platforms without list", Policy{Prefix: "m", IndexChildren: "platforms"}, Policy{}, "at least one platform"},
		{"list without platforms mode", Policy{Prefix: "m", IndexChildren: "none", Platforms: []string{"linux/amd64"}}, Policy{}, "only allowed"},
		{"malformed platform", Policy{Prefix: "m", IndexChildren: "platforms", Platforms: []string{"linux"}}, Policy{}, "not os/arch"},
		{"empty component", Policy{Prefix: "m", IndexChildren: "platforms", Platforms: []string{"linux//v8"}}, Policy{}, "empty or invalid component"},
		{"upper case platform", Policy{Prefix: "m", IndexChildren: "platforms", Platforms: []string{"Linux/AMD64"}}, Policy{}, "invalid component"},
		{"empty os.version", Policy{Prefix: "m", IndexChildren: "platforms", Platforms: []string{"windows/amd64:"}}, Policy{}, "os.version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.in.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error: got %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("policy (-got +want):\n%s", diff)
			}
		})
	}
}

func TestResolvePolicy(t *testing.T) {
	t.Parallel()
	ps := []Policy{
		{Prefix: "mirror", IndexChildren: "none", ImageBlobs: "optional"},
		{Prefix: "mirror/strict", IndexChildren: "all", ImageBlobs: "required"},
		{Prefix: "team/app", IndexChildren: "platforms", Platforms: []string{"linux/amd64"}, ImageBlobs: "required"},
	}
	tests := map[string]string{
		"mirror":              "mirror",
		"mirror/alpine":       "mirror",
		"mirror/strict":       "mirror/strict",
		"mirror/strict/x":     "mirror/strict",
		"mirror/stricter":     "mirror",
		"mirrorx/alpine":      "",
		"team/app":            "team/app",
		"team/application":    "",
		"library/alpine":      "",
		"team/app/sub/deeper": "team/app",
	}
	for repo, want := range tests {
		if got := ResolvePolicy(ps, repo).Prefix; got != want {
			t.Errorf("%s: got policy %q, want %q", repo, got, want)
		}
	}
}

func TestRequiresChild(t *testing.T) {
	t.Parallel()
	p := Policy{Prefix: "m", IndexChildren: "platforms", Platforms: []string{"linux/amd64", "linux/arm64/v8", "windows/amd64:10.0.17763"}}
	tests := []struct {
		platform *v1.Platform
		want     bool
	}{
		{nil, true},
		{&v1.Platform{OS: "linux", Architecture: "amd64"}, true},
		{&v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}, true},
		{&v1.Platform{OS: "linux", Architecture: "arm64"}, true}, // arm64 is v8 by default
		{&v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v9"}, false},
		{&v1.Platform{OS: "linux", Architecture: "s390x"}, false},
		{&v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763"}, true},
		{&v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}, false},
	}
	for _, tc := range tests {
		if got := p.RequiresChild(tc.platform); got != tc.want {
			t.Errorf("%s: got %v, want %v", PlatformString(tc.platform), got, tc.want)
		}
	}
	if (Policy{IndexChildren: "none"}).RequiresChild(nil) || !DefaultPolicy().RequiresChild(&v1.Platform{OS: "linux", Architecture: "riscv64"}) {
		t.Error("none must require nothing and all must require everything")
	}
}

// TestParseKnownPlatform: a platform asked for by name must have an os and
// an architecture the image spec knows, and says which part is unknown.
func TestParseKnownPlatform(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string // want: the error's text, or "" for none
	}{
		{"linux/amd64", ""},
		{"linux/arm64/v8", ""},
		{"windows/amd64:10.0.17763", ""},
		{"linux/amd46", `unknown architecture "amd46"`},
		{"linus/amd64", `unknown operating system "linus"`},
		{"linux", "is not os/arch"},
		{"Linux/amd64", "invalid component"},
	} {
		_, err := ParseKnownPlatform(tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %s", tc.in, err, tc.want)
		}
	}
}
