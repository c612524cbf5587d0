package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

const (
	artifactType  = "application/vnd.skiff.test"
	signatureType = "application/vnd.skiff.sig"
)

// orasDescriptor is the part of oras's --format json output the test reads.
type orasDescriptor struct {
	Digest       digest.Digest    `json:"digest"`
	MediaType    string           `json:"mediaType"`
	ArtifactType string           `json:"artifactType"`
	Referrers    []orasDescriptor `json:"referrers"`
}

// TestArtifactReferrers pushes an OCI artifact with oras, attaches a
// signature-like artifact to it (a manifest with a subject), finds it with
// oras discover, and pulls both back unchanged. Against skiff it also checks
// the referrers API directly, since oras falls back to the tag schema on a
// registry without one.
func TestArtifactReferrers(t *testing.T) {
	t.Parallel()
	tb := newToolbox(t, "oras")
	reg := startRegistry(t)
	reg.clientCredentials(tb, reg.host)
	repo := reg.repo("art/test")
	ref := reg.host + "/" + repo + ":art"

	payload := randomBytes(newRand("artifact/payload"), 200*1024)
	signature := []byte("skiff integration test signature\n")
	writeFile(t, filepath.Join(tb.dir, "payload.bin"), payload)
	writeFile(t, filepath.Join(tb.dir, "sig.txt"), signature)

	var pushed orasDescriptor
	decodeJSON(t, tb.run("oras", "push", "--plain-http", "--no-tty", "--format", "json",
		"--artifact-type", artifactType, ref, "payload.bin"), &pushed)
	if pushed.Digest == "" {
		t.Fatalf("oras push printed no digest")
	}
	m, resp := readManifest(t, reg, repo, "art")
	if got := digest.FromBytes(resp.body); got != pushed.Digest {
		t.Errorf("manifest by tag has digest %s, oras pushed %s", got, pushed.Digest)
	}
	if m.ArtifactType != artifactType {
		t.Errorf("artifactType = %q, want %q", m.ArtifactType, artifactType)
	}

	var attached orasDescriptor
	decodeJSON(t, tb.run("oras", "attach", "--plain-http", "--no-tty", "--format", "json",
		"--artifact-type", signatureType, ref, "sig.txt"), &attached)
	sigManifest, _ := readManifest(t, reg, repo, attached.Digest.String())
	if sigManifest.Subject == nil || sigManifest.Subject.Digest != pushed.Digest {
		t.Errorf("attached manifest subject = %+v, want digest %s", sigManifest.Subject, pushed.Digest)
	}

	var discovered orasDescriptor
	decodeJSON(t, tb.run("oras", "discover", "--plain-http", "--format", "json", ref), &discovered)
	if !hasReferrer(discovered.Referrers, attached.Digest, signatureType) {
		t.Errorf("oras discover did not list %s (%s) as a referrer of %s; got %+v",
			attached.Digest, signatureType, pushed.Digest, discovered.Referrers)
	}

	if serverKind == flavourSkiff {
		checkReferrersAPI(t, reg, repo, pushed.Digest, attached.Digest)
		// Force the API path in the client too (no tag-schema fallback).
		var viaAPI orasDescriptor
		decodeJSON(t, tb.run("oras", "discover", "--plain-http", "--format", "json",
			"--distribution-spec", "v1.1-referrers-api", ref), &viaAPI)
		if !hasReferrer(viaAPI.Referrers, attached.Digest, signatureType) {
			t.Errorf("oras discover --distribution-spec v1.1-referrers-api did not list %s; got %+v",
				attached.Digest, viaAPI.Referrers)
		}
	}

	out := filepath.Join(tb.dir, "out")
	tb.run("oras", "pull", "--plain-http", "--no-tty", "-o", out, ref)
	if got := readFile(t, filepath.Join(out, "payload.bin")); !bytes.Equal(got, payload) {
		t.Errorf("oras pull: payload.bin differs: got %d bytes (%s), want %d bytes (%s)",
			len(got), digest.FromBytes(got), len(payload), digest.FromBytes(payload))
	}
	sigOut := filepath.Join(tb.dir, "sig-out")
	tb.run("oras", "pull", "--plain-http", "--no-tty", "-o", sigOut, reg.host+"/"+repo+"@"+attached.Digest.String())
	if got := readFile(t, filepath.Join(sigOut, "sig.txt")); !bytes.Equal(got, signature) {
		t.Errorf("oras pull of the referrer: sig.txt = %q, want %q", got, signature)
	}
}

// checkReferrersAPI asserts GET /v2/<repo>/referrers/<subject> lists the
// referrer, and that an artifactType filter, when the server applies it,
// keeps it. Spec: distribution-spec "Listing Referrers".
func checkReferrersAPI(t *testing.T, reg *registry, repo string, subject, referrer digest.Digest) {
	t.Helper()
	for _, query := range []string{"", "?artifactType=" + signatureType} {
		resp := send(t, http.MethodGet, reg.url("/v2/"+repo+"/referrers/"+subject.String()+query), reg.authed(nil, repo), nil)
		if resp.status != http.StatusOK {
			t.Errorf("GET referrers%s: want 200, got %s", query, resp)
			continue
		}
		if ct := resp.header.Get("Content-Type"); ct != mediaTypeImageIndex {
			t.Errorf("GET referrers%s: Content-Type %q, want %q", query, ct, mediaTypeImageIndex)
		}
		var idx manifest
		if err := json.Unmarshal(resp.body, &idx); err != nil {
			t.Errorf("GET referrers%s: decode: %v\n%s", query, err, resp.body)
			continue
		}
		found := false
		for _, d := range idx.Manifests {
			if d.Digest == referrer {
				found = true
				if d.ArtifactType != signatureType {
					t.Errorf("GET referrers%s: %s has artifactType %q, want %q", query, referrer, d.ArtifactType, signatureType)
				}
			}
		}
		if !found {
			t.Errorf("GET referrers%s: %s not listed:\n%s", query, referrer, resp.body)
		}
	}
	// A filter for a type nobody attached must leave nothing, if applied.
	resp := send(t, http.MethodGet, reg.url("/v2/"+repo+"/referrers/"+subject.String()+"?artifactType=application/vnd.skiff.none"),
		reg.authed(nil, repo), nil)
	if resp.status != http.StatusOK {
		t.Errorf("GET referrers?artifactType=none: want 200, got %s", resp)
	} else if resp.header.Get("OCI-Filters-Applied") == "artifactType" {
		var idx manifest
		if err := json.Unmarshal(resp.body, &idx); err != nil || len(idx.Manifests) != 0 {
			t.Errorf("GET referrers?artifactType=none with OCI-Filters-Applied: want an empty index, got %s", resp.body)
		}
	}
}

func hasReferrer(list []orasDescriptor, d digest.Digest, artifactType string) bool {
	for _, r := range list {
		if r.Digest == d && r.ArtifactType == artifactType {
			return true
		}
	}
	return false
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode tool output: %v\n%s", err, s)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%v", err)
	}
	return b
}
