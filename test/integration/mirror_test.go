package integration

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/internal/policy"
)

// Docker schema2 media types, for the manifest list of the skopeo case.
const (
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"

	// cosign's OCI 1.1 signature: a manifest whose subject is the signed
	// image and whose config has this media type (its artifactType).
	cosignSigArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"
)

// blobUnknownRE matches a client's report of 400 MANIFEST_BLOB_UNKNOWN:
// the code itself (regctl, crane) or its spec text (skopeo, via
// containers/image, prints "manifest blob unknown").
var blobUnknownRE = regexp.MustCompile(`MANIFEST_BLOB_UNKNOWN|(?i)manifest blob unknown`)

// TestPartialMirror mirrors one platform of a signed three-platform image
// from a CNCF distribution v3.0.0 upstream (in memory, no referrers API)
// into skiff with real clients, as an operator would:
//
//   - the upstream index (linux/amd64, linux/arm64/v8, linux/s390x) is
//     pushed with regctl and signed twice with cosign (local key pair, no
//     transparency log): once the classic way (a sha256-<hex>.sig tag) and
//     once as an OCI 1.1 referrer (a manifest whose subject is the index;
//     on distribution cosign maintains the referrers tag schema);
//   - `skiff policy set mirror/ --index-children=platforms
//     --platforms=linux/amd64` through the operator API;
//   - `regctl image copy --platforms linux/amd64 --referrers --digest-tags`
//     into skiff's mirror/app.
//
// It asserts that the index keeps its digest, the signature is listed by
// skiff's referrers API (and by oras discover) and verifies with cosign
// against skiff in both forms, the amd64 image pulls (crane) with every
// digest and byte unchanged, a pull of linux/arm64 fails with
// MANIFEST_UNKNOWN naming the platform and the partial mirror (crane,
// regctl and a raw GET), and `skiff index status` reports 1 present and 2
// absent. The same copy into a repository without a policy fails with
// MANIFEST_BLOB_UNKNOWN. Then `skopeo copy --multi-arch index-only` of a
// Docker manifest list keeps its digest in a repository whose policy is
// index-children=none and fails with MANIFEST_BLOB_UNKNOWN in a strict one.
func TestPartialMirror(t *testing.T) {
	t.Parallel()
	if serverKind != flavourSkiff {
		t.Skip("skiff's index policy: nothing to test on distribution")
	}
	tb := newToolbox(t, "regctl", "crane", "oras", "cosign", "skopeo")
	tb.paths["skiff"] = serverBin
	up := startUpstream(t)
	// A short grace and link window, so that the retention policy below
	// applies within the test.
	sk := startRegistry(t, "--operator-api", "--gc-grace=3s", "--link-window=1s")
	sk.clientCredentials(tb, sk.host)
	tb.regctlPlainHTTP(up.host)
	tb.regctlPlainHTTP(sk.host)
	skiffURL := "http://" + sk.host
	// The repositories in skiff (all under the test's prefix on an
	// external registry, sk.repo).
	mirrorApp, strictApp := sk.repo("mirror/app"), sk.repo("strict/app")
	indexOnly, strictDocker := sk.repo("indexonly/dockerapp"), sk.repo("strict/dockerapp")

	// The upstream: a three-platform OCI index, pushed with regctl.
	idx, images := newPlatformIndex(t, "mirror/app", false, 64*1024, threePlatforms...)
	amd64 := images["linux/amd64"]
	layout := filepath.Join(t.TempDir(), "layout")
	idx.writeLayout(t, layout, "v1")
	tb.run("regctl", "image", "copy", "ocidir://"+layout+":v1", up.host+"/app:v1")
	if got := headDigest(t, up, "app", "v1"); got != idx.root.Digest {
		t.Fatalf("upstream app:v1 has digest %s, pushed %s", got, idx.root.Digest)
	}
	upIndex := up.host + "/app@" + idx.root.Digest.String()

	// Sign the index in the upstream, both ways.
	cosignEnv := []string{"COSIGN_PASSWORD=skiff-integration-test"}
	oci11Env := append(slices.Clone(cosignEnv), "COSIGN_EXPERIMENTAL=1")
	tb.runEnv(cosignEnv, "cosign", "generate-key-pair") // cosign.key, cosign.pub
	keyDir := tb.dir
	tb.runEnv(cosignEnv, "cosign", "sign", "--key", "cosign.key", "--tlog-upload=false",
		"--allow-http-registry", "--yes", upIndex)
	tb.runEnv(oci11Env, "cosign", "sign", "--key", "cosign.key", "--tlog-upload=false",
		"--allow-http-registry", "--yes", "--registry-referrers-mode=oci-1-1", upIndex)
	sigTag := strings.Replace(idx.root.Digest.String(), ":", "-", 1) + ".sig"
	if tags := listTags(t, up, "app"); !slices.Contains(tags, sigTag) {
		t.Fatalf("upstream: cosign sign made no %s tag; tags %v", sigTag, tags)
	}
	// distribution has no referrers API: cosign (go-containerregistry)
	// keeps the referrers tag schema, an index tagged sha256-<hex>.
	sig := referrerByType(t, up, "app", strings.TrimSuffix(sigTag, ".sig"), cosignSigArtifactType)

	// The policies (this one's and the skopeo case's, with the admin's
	// credentials when skiff authenticates), then the copy of linux/amd64
	// with the referrers and cosign's digest tags.
	policyOut := tb.runEnv(sk.cliEnv(), "skiff", "policy", "set", sk.repo("mirror/"), "--index-children=platforms",
		"--platforms=linux/amd64", "--registry="+skiffURL)
	t.Logf("skiff policy set:\n%s", policyOut)
	tb.runEnv(sk.cliEnv(), "skiff", "policy", "set", sk.repo("indexonly/"), "--index-children=none", "--registry="+skiffURL)
	sk.awaitPolicies(t, sk.repo("mirror/"), sk.repo("indexonly/"))
	// A retention policy in force on the mirror: keep the last v tag, and
	// untagged manifests for a second. The index is copied as v0, then as
	// v1; a collection past the grace period deletes v0 and nothing else:
	// the index v1 names keeps its child, its cosign signature (a digest
	// tag) and its OCI 1.1 referrer, and the tests below find it whole.
	retOut := tb.runEnv(sk.cliEnv(), "skiff", "retention", "set", sk.repo("mirror/"), "--keep-tags=v.*=1", "--untagged-after=1s", "--registry="+skiffURL)
	t.Logf("skiff retention set:\n%s", retOut)
	for _, tag := range []string{"v0", "v1"} {
		tb.run("regctl", "image", "copy", "--platforms", "linux/amd64", "--referrers", "--digest-tags",
			up.host+"/app:v1", sk.host+"/"+mirrorApp+":"+tag)
	}
	if external == nil {
		time.Sleep(4 * time.Second)
		var rep struct {
			Retained, TagsDeleted, ManifestsDeleted int
			Deleted                                 []struct{ Kind, Repo, Tag string }
		}
		gcOut := tb.runEnv(sk.cliEnv(), "skiff", "gc", "--json", "--registry="+skiffURL)
		if err := json.Unmarshal([]byte(gcOut), &rep); err != nil {
			t.Fatalf("skiff gc --json: %v:\n%s", err, gcOut)
		}
		if rep.Retained == 0 || rep.TagsDeleted != 1 || rep.ManifestsDeleted != 0 {
			t.Fatalf("skiff gc with the retention policy: %d repositories retained, %d tags and %d manifests deleted, want v0 alone: %+v",
				rep.Retained, rep.TagsDeleted, rep.ManifestsDeleted, rep.Deleted)
		}
		if tags := listTags(t, sk, mirrorApp); slices.Contains(tags, "v0") || !slices.Contains(tags, "v1") || !slices.Contains(tags, sigTag) {
			t.Fatalf("tags after the collection: %v, want v1 and %s, not v0", tags, sigTag)
		}
	}

	t.Run("index digest unchanged", func(t *testing.T) {
		if got := headDigest(t, sk, mirrorApp, "v1"); got != idx.root.Digest {
			t.Errorf("skiff %s:v1 has digest %s, upstream index %s", mirrorApp, got, idx.root.Digest)
		}
		m, resp := readManifest(t, sk, mirrorApp, "v1")
		if got := digest.FromBytes(resp.body); got != idx.root.Digest {
			t.Errorf("GET %s:v1: body hashes to %s, want %s", mirrorApp, got, idx.root.Digest)
		}
		if len(m.Manifests) != 3 {
			t.Errorf("GET %s:v1: %d children, want all 3 of the upstream index", mirrorApp, len(m.Manifests))
		}
		// The amd64 image, every blob, byte for byte.
		amd64.verifyRemote(t, sk, mirrorApp, amd64.root.Digest.String())
	})

	t.Run("signature", func(t *testing.T) {
		tb := newToolbox(t, "oras", "cosign")
		// cosign's OCI 1.1 verify goes through a recording proxy, which
		// sees whether it used skiff's referrers API (on any registry: the
		// harness can't read an external one's log).
		rec := newRecordingProxy(t, sk.host)
		sk.clientCredentials(tb, sk.host, rec.host)
		writeFile(t, filepath.Join(tb.dir, "cosign.pub"), readFile(t, filepath.Join(keyDir, "cosign.pub")))
		checkReferrersAPIType(t, sk, mirrorApp, idx.root.Digest, sig, cosignSigArtifactType)
		var discovered orasDescriptor
		decodeJSON(t, tb.run("oras", "discover", "--plain-http", "--format", "json",
			"--distribution-spec", "v1.1-referrers-api", sk.host+"/"+mirrorApp+"@"+idx.root.Digest.String()), &discovered)
		if !hasReferrer(discovered.Referrers, sig, cosignSigArtifactType) {
			t.Errorf("oras discover (referrers API) did not list the signature %s; got %+v", sig, discovered.Referrers)
		}
		if tags := listTags(t, sk, mirrorApp); !slices.Contains(tags, sigTag) {
			t.Errorf("skiff %s: regctl --digest-tags did not copy %s; tags %v", mirrorApp, sigTag, tags)
		}
		skIndex := sk.host + "/" + mirrorApp + "@" + idx.root.Digest.String()
		// Classic: the sha256-<hex>.sig tag.
		checkCosignVerified(t, tb.runEnv(cosignEnv, "cosign", "verify", "--key", "cosign.pub",
			"--insecure-ignore-tlog", "--allow-http-registry", skIndex), idx.root.Digest)
		// OCI 1.1: through skiff's referrers API.
		checkCosignVerified(t, tb.runEnv(oci11Env, "cosign", "verify", "--key", "cosign.pub",
			"--insecure-ignore-tlog", "--allow-http-registry", "--experimental-oci11",
			rec.host+"/"+mirrorApp+"@"+idx.root.Digest.String()), idx.root.Digest)
		referrers := "/v2/" + mirrorApp + "/referrers/" + idx.root.Digest.String()
		if rec.count(http.MethodGet, referrers, http.StatusOK) == 0 {
			t.Errorf("cosign verify --experimental-oci11 made no GET %s answered 200 (recording proxy)", referrers)
		}
	})

	t.Run("amd64 pulls", func(t *testing.T) {
		tb := newToolbox(t, "crane")
		sk.clientCredentials(tb, sk.host)
		pulled := filepath.Join(t.TempDir(), "amd64")
		tb.run("crane", "pull", "--insecure", "--platform", "linux/amd64", "--format=oci",
			sk.host+"/"+mirrorApp+":v1", pulled)
		amd64.verifyLayout(t, pulled)
	})

	t.Run("absent platforms fail clearly", func(t *testing.T) {
		tb := newToolbox(t, "crane", "regctl")
		sk.clientCredentials(tb, sk.host)
		tb.regctlPlainHTTP(sk.host)
		arm64 := images["linux/arm64/v8"]
		wantParts := []string{"MANIFEST_UNKNOWN", "linux/arm64", "partial mirror"}
		stdout, stderr, err := tb.exec("crane", "pull", "--insecure", "--platform", "linux/arm64/v8", "--format=oci",
			sk.host+"/"+mirrorApp+":v1", filepath.Join(t.TempDir(), "arm64"))
		expectFailure(t, "crane pull --platform linux/arm64/v8", stdout+stderr, err, wantParts...)
		stdout, stderr, err = tb.exec("regctl", "manifest", "get", "--platform", "linux/arm64/v8", sk.host+"/"+mirrorApp+":v1")
		expectFailure(t, "regctl manifest get --platform linux/arm64/v8", stdout+stderr, err, wantParts...)
		for plat, img := range map[string]*content{"linux/arm64/v8": arm64, "linux/s390x": images["linux/s390x"]} {
			resp := send(t, http.MethodGet, sk.url("/v2/"+mirrorApp+"/manifests/"+img.root.Digest.String()),
				sk.authed(acceptManifests(), mirrorApp), nil)
			msg := string(resp.body)
			if resp.status != http.StatusNotFound || !slices.Contains(errorCodes(resp.body), "MANIFEST_UNKNOWN") ||
				!strings.Contains(msg, plat) || !strings.Contains(msg, "partial mirror") ||
				!strings.Contains(msg, idx.root.Digest.String()) {
				t.Errorf("GET %s@%s (%s): want 404 MANIFEST_UNKNOWN naming %s, the index and \"partial mirror\", got %s",
					mirrorApp, img.root.Digest, plat, plat, resp)
			}
		}
	})

	t.Run("skiff index status", func(t *testing.T) {
		tb := newToolbox(t)
		tb.paths["skiff"] = serverBin
		var st struct {
			Digest   digest.Digest `json:"digest"`
			Children []struct {
				Digest   digest.Digest `json:"digest"`
				Platform string        `json:"platform"`
				Present  bool          `json:"present"`
			} `json:"children"`
			Present int `json:"present"`
			Absent  int `json:"absent"`
		}
		decodeJSON(t, tb.runEnv(sk.cliEnv(), "skiff", "index", "status", mirrorApp+":v1", "--json", "--registry="+skiffURL), &st)
		got := map[string]bool{}
		for _, c := range st.Children {
			got[c.Platform] = c.Present
			if want := images[c.Platform]; want == nil || want.root.Digest != c.Digest {
				t.Errorf("index status: child %s %s is not the upstream's", c.Platform, c.Digest)
			}
		}
		want := map[string]bool{"linux/amd64": true, "linux/arm64/v8": false, "linux/s390x": false}
		if st.Digest != idx.root.Digest || st.Present != 1 || st.Absent != 2 || !maps.Equal(got, want) {
			t.Errorf("skiff index status %s:v1: digest %s, present %d, absent %d, children %v; want %s, 1, 2, %v",
				mirrorApp, st.Digest, st.Present, st.Absent, got, idx.root.Digest, want)
		}
		text := tb.runEnv(sk.cliEnv(), "skiff", "index", "status", mirrorApp+":v1", "--registry="+skiffURL)
		if !strings.Contains(text, "1 of 3 children present") {
			t.Errorf("skiff index status (text) does not say 1 of 3 children present:\n%s", text)
		}
	})

	t.Run("strict repository refuses", func(t *testing.T) {
		tb := newToolbox(t, "regctl")
		sk.clientCredentials(tb, sk.host)
		tb.regctlPlainHTTP(up.host)
		tb.regctlPlainHTTP(sk.host)
		stdout, stderr, err := tb.exec("regctl", "image", "copy", "--platforms", "linux/amd64", "--referrers", "--digest-tags",
			up.host+"/app:v1", sk.host+"/"+strictApp+":v1")
		expectFailureRE(t, "regctl image copy into "+strictApp, stdout+stderr, err, blobUnknownRE)
		expectBlobUnknownRefusal(t, sk, strictApp, idx)
	})

	t.Run("skopeo index-only", func(t *testing.T) {
		tb := newToolbox(t, "skopeo")
		sk.clientCredentials(tb, sk.host)
		list, _ := newPlatformIndex(t, "mirror/dockerlist", true, 32*1024, threePlatforms...)
		list.pushRaw(t, up, "dockerapp", "v1")
		src := "docker://" + up.host + "/dockerapp:v1"
		tb.skopeo("copy", "--multi-arch", "index-only", "--preserve-digests", "--src-tls-verify=false",
			"--dest-tls-verify=false", src, "docker://"+sk.host+"/"+indexOnly+":v1")
		upRaw := tb.skopeo("inspect", "--raw", "--tls-verify=false", src)
		skRaw := tb.skopeo("inspect", "--raw", "--tls-verify=false", "docker://"+sk.host+"/"+indexOnly+":v1")
		if up, sk := digest.FromString(upRaw), digest.FromString(skRaw); up != list.root.Digest || sk != list.root.Digest {
			t.Errorf("skopeo inspect --raw digests: upstream %s, skiff %s; want both %s", up, sk, list.root.Digest)
		}
		if got := headDigest(t, sk, indexOnly, "v1"); got != list.root.Digest {
			t.Errorf("skiff %s:v1: Docker-Content-Digest %s, want %s", indexOnly, got, list.root.Digest)
		}
		_, resp := readManifest(t, sk, indexOnly, "v1")
		if ct := resp.header.Get("Content-Type"); ct != mediaTypeDockerList {
			t.Errorf("skiff %s:v1: Content-Type %q, want %q", indexOnly, ct, mediaTypeDockerList)
		}

		// Without --preserve-digests: skopeo 1.9.3 retries a refused list
		// as an OCI index and, with that flag, reports only "we cannot
		// modify it", hiding the registry's answer. Without it, the retry
		// is refused too and the error lists both refusals.
		stdout, stderr, err := tb.execSkopeo("copy", "--multi-arch", "index-only", "--src-tls-verify=false",
			"--dest-tls-verify=false", src, "docker://"+sk.host+"/"+strictDocker+":v1")
		expectFailureRE(t, "skopeo copy --multi-arch index-only into "+strictDocker, stdout+stderr, err, blobUnknownRE)
		expectBlobUnknownRefusal(t, sk, strictDocker, list)
	})
}

// newPlatformIndex generates an image index (an OCI index, or a Docker
// manifest list when docker is set) with one single-layer image per
// platform, and returns the images too, by platform string.
func newPlatformIndex(t *testing.T, seed string, docker bool, layerSize int, plats ...platform) (*content, map[string]*content) {
	t.Helper()
	c := newContent()
	images := map[string]*content{}
	idx := manifest{SchemaVersion: 2, MediaType: mediaTypeImageIndex}
	if docker {
		idx.MediaType = mediaTypeDockerList
	}
	for _, p := range plats {
		var img *content
		if docker {
			img = newDockerImage(t, seed+"/"+p.String(), p, layerSize)
		} else {
			img = newImage(t, seed+"/"+p.String(), p, layerSize)
		}
		images[p.String()] = img
		c.merge(img)
		d := img.root
		d.Platform = &platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
		idx.Manifests = append(idx.Manifests, d)
	}
	c.root = c.add(idx.MediaType, mustJSON(t, idx), true)
	return c, images
}

// newDockerImage is newImage with Docker schema2 media types.
func newDockerImage(t *testing.T, seed string, plat platform, layerSize int) *content {
	t.Helper()
	rng := newRand(seed)
	c := newContent()
	data, diffID := gzipLayer(t, rng, "skiff-test/layer.bin", layerSize)
	layer := c.add(mediaTypeDockerLayer, data, false)
	config := map[string]any{
		"architecture": plat.Architecture,
		"os":           plat.OS,
		"config":       map[string]any{"Labels": map[string]string{"skiff.test.seed": seed}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []digest.Digest{diffID}},
	}
	if plat.Variant != "" {
		config["variant"] = plat.Variant
	}
	configDesc := c.add(mediaTypeDockerConfig, mustJSON(t, config), false)
	m := manifest{SchemaVersion: 2, MediaType: mediaTypeDockerManifest, Config: &configDesc, Layers: []descriptor{layer}}
	c.root = c.add(mediaTypeDockerManifest, mustJSON(t, m), true)
	return c
}

// pushRaw pushes c with plain API requests: every blob (POST, then PUT
// ?digest=, which every registry supports), every child manifest by digest,
// then the root by tag.
func (c *content) pushRaw(t *testing.T, reg *registry, repo, tag string) {
	t.Helper()
	for _, d := range c.digests() {
		o := c.objects[d]
		if o.isManifest {
			continue
		}
		resp := send(t, http.MethodPost, reg.url("/v2/"+repo+"/blobs/uploads/"), nil, nil)
		if resp.status != http.StatusAccepted {
			t.Fatalf("POST %s upload: want 202, got %s", repo, resp)
		}
		put := withQuery(reg.resolve(t, resp.header.Get("Location")), "digest", d.String())
		resp = send(t, http.MethodPut, put, http.Header{"Content-Type": {"application/octet-stream"}}, bytes.NewReader(o.data))
		if resp.status != http.StatusCreated {
			t.Fatalf("PUT %s blob %s: want 201, got %s", repo, d, resp)
		}
	}
	putManifest := func(ref string, o object) {
		resp := send(t, http.MethodPut, reg.url("/v2/"+repo+"/manifests/"+ref),
			http.Header{"Content-Type": {o.desc.MediaType}}, bytes.NewReader(o.data))
		if resp.status != http.StatusCreated {
			t.Fatalf("PUT %s manifest %s: want 201, got %s", repo, ref, resp)
		}
	}
	for _, d := range c.digests() {
		if o := c.objects[d]; o.isManifest && d != c.root.Digest {
			putManifest(d.String(), o)
		}
	}
	putManifest(tag, c.objects[c.root.Digest])
}

// headDigest returns the Docker-Content-Digest of HEAD manifests/<ref>.
func headDigest(t *testing.T, reg *registry, repo, ref string) digest.Digest {
	t.Helper()
	resp := send(t, http.MethodHead, reg.url("/v2/"+repo+"/manifests/"+ref), reg.authed(acceptManifests(), repo), nil)
	if resp.status != http.StatusOK {
		t.Fatalf("HEAD %s %s:%s: want 200, got %s", reg.host, repo, ref, resp)
	}
	return digest.Digest(resp.header.Get("Docker-Content-Digest"))
}

func listTags(t *testing.T, reg *registry, repo string) []string {
	t.Helper()
	resp := send(t, http.MethodGet, reg.url("/v2/"+repo+"/tags/list"), reg.authed(nil, repo), nil)
	var list struct {
		Tags []string `json:"tags"`
	}
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &list) != nil {
		t.Fatalf("GET %s %s tags/list: %s", reg.host, repo, resp)
	}
	return list.Tags
}

// referrerByType reads the index tagged tag (the referrers tag schema) and
// returns the one referrer of artifactType it lists.
func referrerByType(t *testing.T, reg *registry, repo, tag, artifactType string) digest.Digest {
	t.Helper()
	m, resp := readManifest(t, reg, repo, tag)
	var found []digest.Digest
	for _, d := range m.Manifests {
		if d.ArtifactType == artifactType {
			found = append(found, d.Digest)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s %s:%s lists %d referrers of type %s, want 1:\n%s", reg.host, repo, tag, len(found), artifactType, resp.body)
	}
	return found[0]
}

// checkReferrersAPIType asserts GET /v2/<repo>/referrers/<subject> lists
// referrer with artifactType, unfiltered and filtered by that type.
func checkReferrersAPIType(t *testing.T, reg *registry, repo string, subject, referrer digest.Digest, artifactType string) {
	t.Helper()
	for _, query := range []string{"", "?artifactType=" + url.QueryEscape(artifactType)} {
		resp := send(t, http.MethodGet, reg.url("/v2/"+repo+"/referrers/"+subject.String()+query), reg.authed(nil, repo), nil)
		var idx manifest
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &idx) != nil {
			t.Errorf("GET %s referrers/%s%s: want 200 and an index, got %s", repo, subject, query, resp)
			continue
		}
		found := false
		for _, d := range idx.Manifests {
			found = found || (d.Digest == referrer && d.ArtifactType == artifactType)
		}
		if !found {
			t.Errorf("GET %s referrers/%s%s: %s (%s) not listed:\n%s", repo, subject, query, referrer, artifactType, resp.body)
		}
	}
}

// checkCosignVerified asserts cosign verify's JSON output vouches for d.
func checkCosignVerified(t *testing.T, out string, d digest.Digest) {
	t.Helper()
	var payloads []struct {
		Critical struct {
			Image struct {
				Digest digest.Digest `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	decodeJSON(t, out, &payloads)
	for _, p := range payloads {
		if p.Critical.Image.Digest == d {
			return
		}
	}
	t.Errorf("cosign verify printed no verified signature of %s:\n%s", d, out)
}

// awaitPolicies checks, as the admin, that the operator API serves a
// policy for each prefix. On an external registry it then waits out the
// policy cache: the manifest PUT path of another process (a Lambda
// function instance) may have read the policies just before they were set,
// and sees them at most policy.DefaultTTL later.
func (r *registry) awaitPolicies(t *testing.T, prefixes ...string) {
	t.Helper()
	admin := auth.Scope{Type: auth.TypeRegistry, Name: auth.Admin, Actions: []string{"*"}}
	for _, p := range prefixes {
		resp := send(t, http.MethodGet, r.url("/v2/_skiff/policies/"+p), r.authedFor(nil, admin), nil)
		var rec policy.Record
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &rec) != nil || rec.Policy.Prefix != strings.TrimSuffix(p, "/") || rec.Deleted {
			t.Fatalf("GET /v2/_skiff/policies/%s as the admin: want 200 and the policy, got %s", p, resp)
		}
	}
	if r.external {
		wait := policy.DefaultTTL + time.Second
		t.Logf("waiting %s for the policies to reach every instance's cache", wait)
		time.Sleep(wait)
	}
}

// expectBlobUnknownRefusal checks what a refused copy of c into repo left:
// no root manifest there, and skiff's reason, MANIFEST_BLOB_UNKNOWN. The
// reason is read in the server log on a server of the test's own
// (checkRefusedInLog); an external registry's log is not the harness's,
// so there the harness PUTs the root manifest itself, as the admin, and
// must get 400 MANIFEST_BLOB_UNKNOWN and still no manifest.
func expectBlobUnknownRefusal(t *testing.T, reg *registry, repo string, c *content) {
	t.Helper()
	head := func(when string) {
		resp := send(t, http.MethodHead, reg.url("/v2/"+repo+"/manifests/"+c.root.Digest.String()), reg.authed(acceptManifests(), repo), nil)
		if resp.status != http.StatusNotFound {
			t.Errorf("HEAD %s@%s %s: want 404, got %s", repo, c.root.Digest, when, resp)
		}
	}
	head("after the refused copy")
	if !reg.external {
		checkRefusedInLog(t, reg, repo)
		return
	}
	push := auth.Scope{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.ActionPull, auth.ActionPush}}
	h := reg.authedFor(http.Header{"Content-Type": {c.root.MediaType}}, push)
	resp := send(t, http.MethodPut, reg.url("/v2/"+repo+"/manifests/"+c.root.Digest.String()), h, bytes.NewReader(c.objects[c.root.Digest].data))
	if resp.status != http.StatusBadRequest || !slices.Contains(errorCodes(resp.body), "MANIFEST_BLOB_UNKNOWN") {
		t.Errorf("PUT %s@%s as the admin: want 400 MANIFEST_BLOB_UNKNOWN, got %s", repo, c.root.Digest, resp)
	}
	head("after the admin's refused PUT")
}

// checkRefusedInLog asserts skiff logged at least one manifest PUT into repo
// refused with 400, and that every such refusal is MANIFEST_BLOB_UNKNOWN.
func checkRefusedInLog(t *testing.T, reg *registry, repo string) {
	t.Helper()
	var refused []string
	for _, line := range strings.Split(reg.log.String(), "\n") {
		var l struct {
			Method, Route, Repo, Error string
			Status                     int
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Method != "PUT" || l.Route != "manifest" || l.Repo != repo {
			continue
		}
		if l.Status == http.StatusBadRequest {
			refused = append(refused, l.Error)
		}
	}
	if len(refused) == 0 {
		t.Errorf("server log: no refused manifest PUT into %s", repo)
	}
	for _, e := range refused {
		if !strings.HasPrefix(e, "MANIFEST_BLOB_UNKNOWN: ") {
			t.Errorf("server log: manifest PUT into %s refused with %q, want MANIFEST_BLOB_UNKNOWN", repo, e)
		}
	}
}

// expectFailure asserts a command failed and its output names every part.
func expectFailure(t *testing.T, what, output string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded, want a failure; output:\n%s", what, indent(output))
		return
	}
	for _, p := range parts {
		if !strings.Contains(output, p) {
			t.Errorf("%s failed (%v) without %q in its output:\n%s", what, err, p, indent(output))
		}
	}
}

// expectFailureRE asserts a command failed with output matching re.
func expectFailureRE(t *testing.T, what, output string, err error, re *regexp.Regexp) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded, want a failure; output:\n%s", what, indent(output))
	case !re.MatchString(output):
		t.Errorf("%s failed (%v) without %s in its output:\n%s", what, err, re, indent(output))
	}
}

// execSkopeo is skopeo (with the isolation flags of every skopeo command of
// a toolbox), without failing the test.
func (tb *toolbox) execSkopeo(args ...string) (stdout, stderr string, err error) {
	tb.t.Helper()
	return tb.exec("skopeo", args...)
}
