package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/pkg/oci"
)

func TestParseIndexArgs(t *testing.T) {
	t.Parallel()
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	tests := []parseCase[indexArgs]{
		{name: "tag", args: []string{"status", "mirror/app:1.0", "--registry=http://h:5000"},
			want: indexArgs{repo: "mirror/app", ref: oci.Reference{Tag: "1.0"}, registry: "http://h:5000"}},
		{name: "digest, flags first, json", args: []string{"status", "--json", "--registry=http://h:5000", "mirror/app@" + d},
			want: indexArgs{repo: "mirror/app", ref: oci.Reference{Digest: d}, registry: "http://h:5000", json: true}},
		{name: "registry from env", args: []string{"status", "app:latest"}, env: env("SKIFF_REGISTRY", "https://r.example"),
			want: indexArgs{repo: "app", ref: oci.Reference{Tag: "latest"}, registry: "https://r.example"}},
		{name: "no command", args: nil, wantErr: "needs a command"},
		{name: "unknown command", args: []string{"show", "app:1"}, wantErr: `unknown index command "show"`},
		{name: "no reference", args: []string{"status", "mirror/app", "--registry=http://h"}, wantErr: "names no tag or digest"},
		{name: "host in the name", args: []string{"status", "127.0.0.1:5000/mirror/app:1", "--registry=http://h"}, wantErr: "starts with a registry host"},
		{name: "bad repository", args: []string{"status", "Mirror/app:1", "--registry=http://h"}, wantErr: "must be lower case"},
		{name: "bad digest", args: []string{"status", "app@sha256:abc", "--registry=http://h"}, wantErr: "sha256"},
		{name: "no registry", args: []string{"status", "app:1"}, wantErr: "--registry=URL"},
		{name: "two images", args: []string{"status", "a:1", "b:1", "--registry=http://h"}, wantErr: "takes one"},
		{name: "table is not an index flag", args: []string{"status", "a:1", "--table=t"}, wantErr: "unknown flag: --table"},
	}
	runParseCases(t, tests, parseWith("index", newIndexCommand))
}

// put sends one registry request and fails t unless it answers want.
func put(t *testing.T, url, contentType string, body []byte, want int) *http.Response {
	t.Helper()
	method := "PUT"
	if strings.Contains(url, "/blobs/uploads/") {
		method = "POST"
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return resp
}

// imageFor builds a one-layer image manifest for os/arch, pushing its
// blobs and itself to repo when push is set, and returns its descriptor
// with the platform.
func imageFor(t *testing.T, base, repo, osName, arch string, push bool) map[string]any {
	t.Helper()
	config := []byte(`{"architecture":"` + arch + `","os":"` + osName + `"}`)
	layer := []byte("layer of " + osName + "/" + arch)
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digest.FromBytes(b).String(), "size": len(b)}
	}
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
		"config": desc("application/vnd.oci.image.config.v1+json", config),
		"layers": []any{desc("application/vnd.oci.image.layer.v1.tar", layer)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if push {
		for _, b := range [][]byte{config, layer} {
			put(t, base+"/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(b).String(), "application/octet-stream", b, http.StatusCreated)
		}
		put(t, base+"/v2/"+repo+"/manifests/"+digest.FromBytes(m).String(), oci.MediaTypeImageManifest, m, http.StatusCreated)
	}
	d := desc(oci.MediaTypeImageManifest, m)
	d["platform"] = map[string]string{"os": osName, "architecture": arch}
	return d
}

// TestIndexStatusCLI: a platform policy set with the CLI lets a one-platform
// copy of a two-platform index in, and `skiff index status` shows which
// platform is there.
func TestIndexStatusCLI(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true)
	reg := "--registry=" + srv.URL
	const repo = "mirror/app"
	amd := imageFor(t, srv.URL, repo, "linux", "amd64", true)
	arm := imageFor(t, srv.URL, repo, "linux", "arm64", false)
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex, "manifests": []any{amd, arm}})
	if err != nil {
		t.Fatal(err)
	}
	put(t, srv.URL+"/v2/"+repo+"/manifests/1.0", oci.MediaTypeImageIndex, index, http.StatusBadRequest)
	if _, _, err := cli(t, env(), "policy", "set", "mirror/", "--index-children=platforms", "--platforms=linux/amd64", reg); err != nil {
		t.Fatal(err)
	}
	resp := put(t, srv.URL+"/v2/"+repo+"/manifests/1.0", oci.MediaTypeImageIndex, index, http.StatusCreated)
	indexDigest := resp.Header.Get("Docker-Content-Digest")

	out, _, err := cli(t, env(), "index", "status", repo+":1.0", reg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		repo + "@" + indexDigest + " (" + oci.MediaTypeImageIndex + ")",
		"PLATFORM     DIGEST" + strings.Repeat(" ", 67) + "STATUS",
		"linux/amd64  " + amd["digest"].(string) + "  present",
		"linux/arm64  " + arm["digest"].(string) + "  absent",
		"1 of 2 children present; absent: linux/arm64 (a partial mirror: pulls of those platforms fail with MANIFEST_UNKNOWN)",
	}
	if diff := cmp.Diff(lines, want); diff != "" {
		t.Errorf("index status (-got +want):\n%s", diff)
	}

	out, _, err = cli(t, env(), "index", "status", repo+"@"+indexDigest, "--json", reg)
	var rep httpapi.IndexReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("index status --json: %q %v", out, err)
	}
	if rep.Present != 1 || rep.Absent != 1 || len(rep.Children) != 2 || rep.Digest != indexDigest {
		t.Errorf("index status --json: %+v", rep)
	}

	_, _, err = cli(t, env(), "index", "status", repo+":nope", reg)
	if err == nil || !strings.Contains(err.Error(), "tag nope is not in repository mirror/app") {
		t.Errorf("unknown tag: %v", err)
	}
}
