package integration

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Whole layers in one request: the clients operators mirror with push a
// layer in a single PUT or PATCH (skopeo, podman, crane, oras; regctl
// tries that first), so a registry behind a body cap must either take it
// (skiff serve, or the AWS deployment with its ingest service) or refuse
// it at once with advice (the AWS deployment in pure-Lambda mode).
//
//   - SKIFF_IT_LAYER_MIB sets the layer's size (default 64; `make
//     test-large` runs 1024);
//   - SKIFF_IT_BODY_CAP=N says the registry under test takes at most N
//     bytes per request (scripts/lambda-checks.sh sets it for a pure-Lambda
//     front door): the pushes must then fail in under a second with the
//     registry's SIZE_INVALID advice, and regctl must still push in chunks.

// layerMiB is the size of the big layer.
func layerMiB(t *testing.T) int {
	v := os.Getenv("SKIFF_IT_LAYER_MIB")
	if v == "" {
		return 64
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SKIFF_IT_LAYER_MIB=%q: want a positive number of MiB", v)
	}
	return n
}

// bodyCap is SKIFF_IT_BODY_CAP: 0 when the registry takes any body.
func bodyCap(t *testing.T) int64 {
	v := os.Getenv("SKIFF_IT_BODY_CAP")
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		t.Fatalf("SKIFF_IT_BODY_CAP=%q: want a number of bytes", v)
	}
	return n
}

// bigImage is an image with one large layer, written as an OCI layout on
// disk as it is generated (never held in memory).
type bigImage struct {
	layout                   string // OCI layout dir, tag "v1"
	manifest, config, layer  digest.Digest
	manifestSize, layerSize  int64
	manifestBytes, configRaw []byte
}

// newBigImage writes an image whose single gzip layer holds a file of n
// random bytes. The gzip stream is stored, not compressed (random bytes
// don't compress): writing a GiB takes seconds, not a minute.
func newBigImage(t *testing.T, seed string, n int64) *bigImage {
	t.Helper()
	dir := podmanLayoutDir(t) // podman reads it too
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.CreateTemp(blobs, "layer-")
	if err != nil {
		t.Fatal(err)
	}
	layerSum, tarSum := sha256.New(), sha256.New()
	counter := &countWriter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(tmp, layerSum, counter), gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(io.MultiWriter(zw, tarSum))
	if err := tw.WriteHeader(&tar.Header{Name: "skiff-test/big.bin", Mode: 0o644, Size: n, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8(sha256.Sum256([]byte(seed)))
	if _, err := io.CopyN(tw, rng, n); err != nil {
		t.Fatal(err)
	}
	for _, c := range []io.Closer{tw, zw, tmp} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	img := &bigImage{layout: dir, layer: sumDigest(layerSum), layerSize: counter.n}
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, img.layer.Encoded())); err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	img.configRaw = mustJSON(t, map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": map[string]string{"skiff.test.seed": seed}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{sumDigest(tarSum)}},
	})
	img.config = write(img.configRaw)
	configDesc := descriptor{MediaType: mediaTypeImageConfig, Digest: img.config, Size: int64(len(img.configRaw))}
	img.manifestBytes = mustJSON(t, manifest{SchemaVersion: 2, MediaType: mediaTypeImageManifest, Config: &configDesc,
		Layers: []descriptor{{MediaType: mediaTypeLayerGzip, Digest: img.layer, Size: img.layerSize}}})
	img.manifest, img.manifestSize = write(img.manifestBytes), int64(len(img.manifestBytes))
	root := descriptor{MediaType: mediaTypeImageManifest, Digest: img.manifest, Size: img.manifestSize,
		Annotations: map[string]string{annotationRefName: "v1"}}
	index := manifest{SchemaVersion: 2, MediaType: mediaTypeImageIndex, Manifests: []descriptor{root}}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(t, index), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func sumDigest(h hash.Hash) digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
}

// fileDigest is the sha256 of a file, read as a stream.
func fileDigest(t *testing.T, path string) (digest.Digest, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return sumDigest(h), n
}

// verifyRemote checks the registry holds the image under repo:v1, digests
// unchanged: the manifest by tag, the layer by HEAD (its size).
func (img *bigImage) verifyRemote(t *testing.T, reg *registry, repo string) {
	t.Helper()
	_, resp := readManifest(t, reg, repo, "v1")
	if d := digest.FromBytes(resp.body); d != img.manifest {
		t.Errorf("%s:v1 is %s, want %s (the manifest changed on the way)", repo, d, img.manifest)
	}
	head := send(t, http.MethodHead, reg.url("/v2/"+repo+"/blobs/"+img.layer.String()), reg.authed(nil, repo), nil)
	if cl := head.header.Get("Content-Length"); head.status != http.StatusOK || cl != strconv.FormatInt(img.layerSize, 10) {
		t.Errorf("HEAD %s@%s: %d, Content-Length %s; want 200, %d", repo, img.layer, head.status, cl, img.layerSize)
	}
}

// verifyLayout checks a layout a client pulled: it names the manifest,
// and the layer file has the layer's digest.
func (img *bigImage) verifyLayout(t *testing.T, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Errorf("pulled layout: %v", err)
		return
	}
	if !strings.Contains(string(raw), img.manifest.String()) {
		t.Errorf("pulled layout's index.json does not name %s:\n%s", img.manifest, raw)
	}
	d, n := fileDigest(t, filepath.Join(dir, "blobs", "sha256", img.layer.Encoded()))
	if d != img.layer || n != img.layerSize {
		t.Errorf("pulled layer: %s, %d bytes; want %s, %d bytes", d, n, img.layer, img.layerSize)
	}
}

// TestWholeLayerClients: skopeo, regctl (its default settings), crane,
// oras and podman push an image with one big layer and pull it back,
// digests unchanged; behind a body cap (SKIFF_IT_BODY_CAP) skopeo, crane
// and oras must be refused in under a second with the registry's advice,
// podman (which streams) with a 413 in under five, and regctl with the
// README's chunk settings must still push it.
func TestWholeLayerClients(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	capped := bodyCap(t)
	n := int64(layerMiB(t)) << 20
	img := newBigImage(t, "whole-layer/"+reg.prefix, n)
	t.Logf("layer %s: %d bytes; body cap %d", img.layer, img.layerSize, capped)

	// podman first: its blob info cache (shared by every root podman and
	// skopeo) would otherwise know the layer in another repository of this
	// registry and mount it instead of uploading it.
	for _, client := range append([]regClient{{name: "podman", tool: "podman"}}, regClients...) {
		t.Run(client.name, func(t *testing.T) {
			tb := newToolbox(t, client.tool)
			reg.clientCredentials(tb, reg.host)
			switch {
			case client.name == "regctl" && capped > 0:
				// The README's settings: chunks under the cap, no whole-layer
				// PUT. With its defaults regctl tries that PUT, gets the 413 and
				// falls back to chunks, and now and then loses bytes on the way
				// (a regclient race, reproduced without Skiff by
				// scripts/repro-regctl-413.sh; docs/clients.md).
				cap := strconv.FormatInt(capped, 10)
				tb.regctlPlainHTTP(reg.host, "--blob-chunk", cap, "--blob-max", cap)
			case client.setup != nil:
				client.setup(tb, reg.host) // regctl: plain HTTP, nothing else: its default settings
			}
			repo := reg.repo("it/whole-layer/" + client.name)
			dst := reg.host + "/" + repo + ":v1"
			if client.name == "podman" {
				// podman pushes from its storage: in from the layout first
				// (not timed), out to the registry (its layers compressed
				// again on the way).
				if _, stderr, err := tb.exec("podman", tb.podmanTransfer("pull", "oci:"+img.layout+":v1")...); err != nil {
					t.Fatalf("podman pull from the layout: %v\n%s", err, stderr)
				}
			}
			push := func() (string, error) {
				if client.name == "podman" {
					_, stderr, err := tb.exec("podman", tb.podmanTransfer("push", img.config.Encoded(), dst)...)
					return stderr, err
				}
				stdout, stderr, err := tb.exec(client.tool, client.pushArgs(img.layout, "v1", dst)...)
				return stdout + stderr, err
			}

			start := time.Now()
			out, err := push()
			took := time.Since(start)
			if capped > 0 && client.name != "regctl" {
				// Refused before the body: fast, and the client says why.
				// podman streams its layer without a Content-Length, so the
				// refusal comes once Lambda has read its 6 MB payload.
				limit := time.Second
				if client.name == "podman" {
					limit = 5 * time.Second
				}
				switch {
				case err == nil:
					t.Fatalf("the push of a %d-byte layer through a %d-byte body cap succeeded", img.layerSize, capped)
				case took > limit:
					t.Errorf("the refusal took %s, want under %s", took.Round(time.Millisecond), limit)
				}
				t.Logf("refused in %s", took.Round(time.Millisecond))
				if !refusedWithAdvice(client.name, out) {
					t.Errorf("%s's error does not show the registry's SIZE_INVALID advice:\n%s", client.name, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("push: %v\n%s", err, out)
			}
			t.Logf("pushed %d MiB in %s", img.layerSize>>20, took.Round(time.Millisecond))

			if client.name == "podman" {
				// Its own compression: other layer digests, the same config.
				fresh := newToolbox(t, "podman")
				reg.clientCredentials(fresh, reg.host)
				fresh.run("podman", fresh.podmanTransfer("pull", dst)...)
				id := strings.TrimSpace(fresh.run("podman", append(fresh.podmanGlobal(), "image", "inspect", "--format", "{{.Id}}", dst)...))
				if id != img.config.Encoded() {
					t.Errorf("pulled back, podman's image is %s, want %s (the config changed)", id, img.config.Encoded())
				}
				return
			}
			img.verifyRemote(t, reg, repo)
			pulled := filepath.Join(t.TempDir(), "pull")
			client.pull(tb, dst, pulled, "v1")
			img.verifyLayout(t, pulled)
		})
	}
}

// refusedWithAdvice reports whether a client's error output carries the
// registry's SIZE_INVALID answer (each client words the code its own way).
// podman, and skopeo when it compresses a layer as it sends it, stream the
// body without a Content-Length: no front door can see its size before
// the body arrives, so they get Lambda's own 413 (docs/deploy.md).
func refusedWithAdvice(client, out string) bool {
	lower := strings.ToLower(out)
	if strings.Contains(lower, "size_invalid") || strings.Contains(lower, "size invalid") {
		return strings.Contains(out, "ingest service")
	}
	return client == "podman" && strings.Contains(out, "413")
}
