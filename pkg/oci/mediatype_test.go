package oci

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMediaTypePredicates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mt                      string
		index, image, nondistrb bool
	}{
		{mt: MediaTypeImageManifest, image: true},
		{mt: MediaTypeDockerManifest, image: true},
		{mt: MediaTypeImageIndex, index: true},
		{mt: MediaTypeDockerManifestList, index: true},
		{mt: MediaTypeDockerSchema1},
		{mt: MediaTypeDockerSchema1Signed},
		{mt: "application/vnd.oci.image.layer.v1.tar+gzip"},
		{mt: "application/vnd.oci.image.layer.nondistributable.v1.tar", nondistrb: true},
		{mt: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", nondistrb: true},
		{mt: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", nondistrb: true},
		{mt: MediaTypeDockerForeignLayer, nondistrb: true},
		{mt: "application/vnd.docker.image.rootfs.diff.tar.gzip"},
		{mt: ""},
	}
	for _, tc := range tests {
		t.Run(tc.mt, func(t *testing.T) {
			t.Parallel()
			got := []bool{IsIndexMediaType(tc.mt), IsImageMediaType(tc.mt), IsNonDistributable(tc.mt)}
			want := []bool{tc.index, tc.image, tc.nondistrb}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("index, image, non-distributable (-got +want):\n%s", diff)
			}
		})
	}
}

func TestPlatformString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    *v1.Platform
		want string
	}{
		{"nil", nil, ""},
		{"os/arch", &v1.Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64"},
		{"variant", &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux/arm64/v8"},
		{"os version", &v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1817"}, "windows/amd64:10.0.17763.1817"},
		{"variant and os version", &v1.Platform{OS: "windows", Architecture: "arm", Variant: "v7", OSVersion: "10.0"}, "windows/arm/v7:10.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(PlatformString(tc.p), tc.want); diff != "" {
				t.Errorf("PlatformString (-got +want):\n%s", diff)
			}
		})
	}
}

func TestValidMediaType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mt   string
		want bool
	}{
		{"application/vnd.oci.image.layer.v1.tar+gzip", true},
		{"application/spdx+json", true},
		{"application/octet-stream", true},
		{"Application/JSON", true},
		{"a/b", true},
		{"application/vnd.a!#$&^_.+-z", true},
		{"", false},
		{"application", false},
		{"application/", false},
		{"/json", false},
		{"application/json/x", false},
		{"application/json; charset=utf-8", false},
		{"application/.json", false},
		{"appl ication/json", false},
		{"application/" + string(make([]byte, 128)), false},
	}
	for _, tc := range tests {
		t.Run(tc.mt, func(t *testing.T) {
			t.Parallel()
			if got := validMediaType(tc.mt); got != tc.want {
				t.Errorf("validMediaType(%q) = %v, want %v", tc.mt, got, tc.want)
			}
		})
	}
}

func TestBaseMediaType(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{MediaTypeImageManifest, MediaTypeImageManifest},
		{" Application/Vnd.OCI.Image.Manifest.v1+JSON ; charset=utf-8", MediaTypeImageManifest},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(baseMediaType(tc.in), tc.want); diff != "" {
				t.Errorf("baseMediaType (-got +want):\n%s", diff)
			}
		})
	}
}
