package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// copyEvents decodes the JSON lines of skiff copy (off a terminal) and
// returns them with the summary, the last line.
func copyEvents(t *testing.T, out string) ([]map[string]any, map[string]any) {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("skiff copy printed a line that is not JSON: %q", sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) == 0 || lines[len(lines)-1]["event"] != "summary" {
		t.Fatalf("skiff copy printed no summary line:\n%s", out)
	}
	return lines, lines[len(lines)-1]
}

// TestSkiffCopy is the partial mirror made with skiff's own copier: a
// three-platform index in a CNCF distribution upstream, signed with cosign
// both ways (a sha256-<hex>.sig tag and an OCI 1.1 referrer) and with an
// SBOM attestation (its .att tag), copied with `skiff copy --platforms
// linux/amd64 --referrers --digest-tags` into a repository whose policy
// takes sparse indexes. The index keeps its digest, cosign verifies the
// signature (both forms) and the attestation against skiff, the amd64
// image reads back byte for byte and no blob of the other platforms is
// there; a second run copies nothing and says so. Into a strict
// repository the copy fails before any blob is sent, with skiff's
// MANIFEST_BLOB_UNKNOWN.
func TestSkiffCopy(t *testing.T) {
	t.Parallel()
	if serverKind != flavourSkiff {
		t.Skip("skiff copy into skiff's sparse repositories: nothing to test on distribution")
	}
	tb := newToolbox(t, "regctl", "cosign")
	tb.paths["skiff"] = serverBin
	up := startUpstream(t)
	sk := startRegistry(t, "--operator-api")
	sk.clientCredentials(tb, sk.host)
	tb.regctlPlainHTTP(up.host)
	skiffURL := "http://" + sk.host
	mirrorApp, strictApp := sk.repo("copymirror/app"), sk.repo("copystrict/app")

	idx, images := newPlatformIndex(t, "copy/app", false, 48*1024, threePlatforms...)
	layout := filepath.Join(t.TempDir(), "layout")
	idx.writeLayout(t, layout, "v1")
	tb.run("regctl", "image", "copy", "ocidir://"+layout+":v1", up.host+"/app:v1")
	upIndex := up.host + "/app@" + idx.root.Digest.String()

	cosignEnv := []string{"COSIGN_PASSWORD=skiff-integration-test"}
	oci11Env := append(slices.Clone(cosignEnv), "COSIGN_EXPERIMENTAL=1")
	tb.runEnv(cosignEnv, "cosign", "generate-key-pair")
	tb.runEnv(cosignEnv, "cosign", "sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--yes", upIndex)
	tb.runEnv(oci11Env, "cosign", "sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--yes",
		"--registry-referrers-mode=oci-1-1", upIndex)
	writeFile(t, filepath.Join(tb.dir, "sbom.json"), []byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"copy-app","dataLicense":"CC0-1.0","documentNamespace":"https://skiff.test/copy-app","creationInfo":{"created":"2026-12-04T00:00:00Z","creators":["Tool: skiff-integration"]},"packages":[]}`))
	tb.runEnv(cosignEnv, "cosign", "attest", "--key", "cosign.key", "--type", "spdxjson", "--predicate", "sbom.json",
		"--tlog-upload=false", "--allow-http-registry", "--yes", upIndex)
	prefix := strings.Replace(idx.root.Digest.String(), ":", "-", 1)
	upTags := listTags(t, up, "app")
	for _, want := range []string{prefix + ".sig", prefix + ".att"} {
		if !slices.Contains(upTags, want) {
			t.Fatalf("upstream: no %s tag after cosign; tags %v", want, upTags)
		}
	}
	sig := referrerByType(t, up, "app", prefix, cosignSigArtifactType)

	tb.runEnv(sk.cliEnv(), "skiff", "policy", "set", sk.repo("copymirror/"), "--index-children=none", "--registry="+skiffURL)
	sk.awaitPolicies(t, sk.repo("copymirror/"))

	copyArgs := func(dst string) []string {
		return []string{"copy", "--platforms", "linux/amd64", "--referrers", "--digest-tags", "--insecure",
			up.host + "/app:v1", sk.host + "/" + dst}
	}
	_, first := copyEvents(t, tb.run("skiff", copyArgs(mirrorApp)...))
	if first["images"] != float64(1) || first["blobsCopied"] == float64(0) || first["failures"] != nil {
		t.Fatalf("first copy's summary: %v", first)
	}

	if got := headDigest(t, sk, mirrorApp, "v1"); got != idx.root.Digest {
		t.Errorf("skiff %s:v1 is %s, the upstream index %s", mirrorApp, got, idx.root.Digest)
	}
	images["linux/amd64"].verifyRemote(t, sk, mirrorApp, images["linux/amd64"].root.Digest.String())
	for _, p := range []string{"linux/arm64/v8", "linux/s390x"} {
		for _, d := range images[p].digests() {
			kind := "blobs"
			if images[p].objects[d].isManifest {
				kind = "manifests"
			}
			resp := send(t, http.MethodHead, sk.url("/v2/"+mirrorApp+"/"+kind+"/"+d.String()), sk.authed(acceptManifests(), mirrorApp), nil)
			if resp.status != http.StatusNotFound {
				t.Errorf("%s %s of %s is in skiff after a copy of linux/amd64 alone: HEAD %s", kind, d, p, resp)
			}
		}
	}
	skTags := listTags(t, sk, mirrorApp)
	for _, want := range []string{"v1", prefix + ".sig", prefix + ".att"} {
		if !slices.Contains(skTags, want) {
			t.Errorf("skiff %s: no tag %s after skiff copy --digest-tags; tags %v", mirrorApp, want, skTags)
		}
	}
	checkReferrersAPIType(t, sk, mirrorApp, idx.root.Digest, sig, cosignSigArtifactType)

	skIndex := sk.host + "/" + mirrorApp + "@" + idx.root.Digest.String()
	checkCosignVerified(t, tb.runEnv(cosignEnv, "cosign", "verify", "--key", "cosign.pub",
		"--insecure-ignore-tlog", "--allow-http-registry", skIndex), idx.root.Digest)
	checkCosignVerified(t, tb.runEnv(oci11Env, "cosign", "verify", "--key", "cosign.pub",
		"--insecure-ignore-tlog", "--allow-http-registry", "--experimental-oci11", skIndex), idx.root.Digest)
	att := tb.runEnv(cosignEnv, "cosign", "verify-attestation", "--key", "cosign.pub", "--type", "spdxjson",
		"--insecure-ignore-tlog", "--allow-http-registry", skIndex)
	if !strings.Contains(att, `"payloadType":"application/vnd.in-toto+json"`) {
		t.Errorf("cosign verify-attestation against skiff printed no in-toto envelope:\n%s", att)
	}

	lines, again := copyEvents(t, tb.run("skiff", copyArgs(mirrorApp)...))
	if again["blobsCopied"] != float64(0) || again["manifestsCopied"] != float64(0) {
		t.Errorf("second copy's summary %v, want nothing copied", again)
	}
	if done := lines[len(lines)-2]; done["event"] != "image-done" || !strings.Contains(fmt.Sprint(done["note"]), "nothing to copy") {
		t.Errorf("second copy: %v, want image-done saying there was nothing to copy", done)
	}

	t.Run("strict repository refuses up front", func(t *testing.T) {
		rec := newRecordingProxy(t, sk.host)
		sk.clientCredentials(tb, rec.host)
		stdout, stderr, err := tb.exec("skiff", "copy", "--platforms", "linux/amd64", "--insecure",
			up.host+"/app:v1", rec.host+"/"+strictApp)
		expectFailureRE(t, "skiff copy into "+strictApp, stdout+stderr, err, blobUnknownRE)
		if !strings.Contains(stderr, up.host+"/app:v1") || !strings.Contains(stderr, "refuses index") {
			t.Errorf("skiff copy's error names neither the image nor the refusal:\n%s", stderr)
		}
		if n := len(rec.uploads(strictApp)); n != 0 {
			t.Errorf("the refused copy made %d blob upload requests, want none", n)
		}
		expectBlobUnknownRefusal(t, sk, strictApp, idx)
	})
}

// gateProxy forwards to a registry and records each request (method,
// path, digest query); after limit blob uploads were committed (PUT
// answered 201) it holds every further upload request until the test
// ends, as a copy frozen mid-image that is then killed.
type gateProxy struct {
	host  string
	limit int // -1: never hold
	mu    sync.Mutex
	reqs  []string
	done  int
	cut   chan struct{}
	once  sync.Once
	hold  chan struct{}
}

func newGateProxy(t *testing.T, target string, limit int) *gateProxy {
	t.Helper()
	g := &gateProxy{limit: limit, cut: make(chan struct{}), hold: make(chan struct{})}
	srv := httptest.NewUnstartedServer(nil)
	g.host = srv.Listener.Addr().String()
	backend := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Director: func(r *http.Request) { r.URL.Scheme, r.URL.Host = backend.Scheme, backend.Host },
		ModifyResponse: func(resp *http.Response) error {
			if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
				resp.Header.Set("WWW-Authenticate", strings.ReplaceAll(ch, `realm="http://`+target+`/`, `realm="http://`+g.host+`/`))
			}
			return nil
		},
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upload := strings.Contains(r.URL.Path, "/blobs/uploads/")
		g.mu.Lock()
		held := upload && g.limit >= 0 && g.done >= g.limit
		g.reqs = append(g.reqs, r.Method+" "+r.URL.Path+" "+r.URL.Query().Get("digest"))
		g.mu.Unlock()
		if held {
			g.once.Do(func() { close(g.cut) })
			<-g.hold
			http.Error(w, "held", http.StatusServiceUnavailable)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(sw, r)
		if upload && r.Method == http.MethodPut && sw.status == http.StatusCreated {
			g.mu.Lock()
			g.done++
			g.mu.Unlock()
		}
	})
	srv.Start()
	t.Cleanup(func() { close(g.hold); srv.Close() })
	return g
}

// uploadRequests returns the digests of the blob commits sent (PUT
// ?digest=) and the count of upload requests.
func (g *gateProxy) uploadRequests() (puts []string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.reqs {
		if !strings.Contains(r, "/blobs/uploads/") {
			continue
		}
		n++
		if f := strings.Fields(r); f[0] == http.MethodPut && len(f) == 3 {
			puts = append(puts, f[2])
		}
	}
	return puts, n
}

// TestSkiffCopyResumes: skiff copy killed while it copies a six-layer
// image (three layers stored, the fourth frozen) and run again sends no
// finished blob again: the rerun's upload requests are those of the
// blobs that were not stored, and the image then reads back whole.
func TestSkiffCopyResumes(t *testing.T) {
	t.Parallel()
	tb := newToolbox(t, "regctl")
	tb.paths["skiff"] = serverBin
	up := startUpstream(t)
	sk := startRegistry(t)
	sk.clientCredentials(tb, sk.host)
	repo := sk.repo("copyresume/app")
	img := newImage(t, "copy/resume", platform{OS: "linux", Architecture: "amd64"}, 200<<10, 210<<10, 220<<10, 230<<10, 240<<10, 250<<10)
	img.pushRaw(t, up, "resume", "v1")
	blobs := 0
	for _, d := range img.digests() {
		if !img.objects[d].isManifest {
			blobs++
		}
	}

	gate := newGateProxy(t, sk.host, 3)
	sk.clientCredentials(tb, gate.host)
	cmd := exec.Command(tb.paths["skiff"], "copy", "--jobs", "1", "--insecure", up.host+"/resume:v1", gate.host+"/"+repo)
	cmd.Dir, cmd.Env = tb.dir, tb.env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gate.cut:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("skiff copy never reached its fourth blob:\n%s", out.String())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	stored, _ := gate.uploadRequests()
	if len(stored) != 3 {
		t.Fatalf("the killed copy committed %d blobs (%v), want 3", len(stored), stored)
	}

	again := newGateProxy(t, sk.host, -1)
	sk.clientCredentials(tb, again.host)
	_, sum := copyEvents(t, tb.run("skiff", "copy", "--insecure", up.host+"/resume:v1", again.host+"/"+repo))
	puts, n := again.uploadRequests()
	for _, d := range puts {
		if slices.Contains(stored, d) {
			t.Errorf("the rerun sent blob %s again, which the killed copy had stored", d)
		}
	}
	missing := blobs - 3
	// Each missing blob: POST, PATCH, PUT (go-containerregistry streams it
	// in one PATCH).
	if len(puts) != missing || n != 3*missing {
		t.Errorf("the rerun made %d upload requests committing %d blobs, want %d requests for the %d blobs not stored", n, len(puts), 3*missing, missing)
	}
	if sum["blobsCopied"] != float64(missing) || sum["blobsSkipped"] != float64(3) {
		t.Errorf("rerun summary %v, want %d copied and 3 skipped", sum, missing)
	}
	img.verifyRemote(t, sk, repo, "v1")
}
