package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// memDir is a directory in memory (/dev/shm) where there is one, so the
// fuzz target's embedded store costs no disk I/O; else a temp dir.
func memDir(f *testing.F) string {
	f.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "skiff-fuzz-")
		if err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

// FuzzManifestPut drives PUT /v2/<name>/manifests/<tag> through the whole
// HTTP layer over an embedded store in memory, with bodies and content
// types mutated from valid manifests (an image whose blobs exist, an index
// of it, an artifact with a subject) and from refused ones. Whatever the
// input: no 5xx; a 201 names the body's digest and the tag then resolves
// to it; any refusal is a 4xx spec error envelope and stores nothing (no
// tag, and no manifest under the body's digest unless an earlier input
// stored those bytes).
func FuzzManifestPut(f *testing.F) {
	dir := memDir(f)
	blobs, err := local.NewBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		f.Fatal(err)
	}
	meta, err := local.OpenMetaStore(filepath.Join(dir, "meta.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { meta.Close() })
	reg, err := registry.New(blobs, meta)
	if err != nil {
		f.Fatal(err)
	}
	api := httpapi.New(reg)
	const repo = "fuzz/app"
	ctx := context.Background()
	put := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		if _, err := reg.PutBlob(ctx, repo, d, int64(len(b)), bytes.NewReader(b)); err != nil {
			f.Fatal(err)
		}
		return d
	}
	cfg, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("a layer")
	cd, ld := put(cfg), put(layer)
	image := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}],"annotations":{"a":"b"}}`,
		oci.MediaTypeImageManifest, cd, len(cfg), ld, len(layer))
	if _, err := reg.PutManifest(ctx, repo, oci.Reference{Tag: "base"}, oci.MediaTypeImageManifest, []byte(image), nil); err != nil {
		f.Fatal(err)
	}
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		oci.MediaTypeImageIndex, oci.MediaTypeImageManifest, digest.FromString(image), len(image))
	artifact := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":%d},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
		oci.MediaTypeImageManifest, cd, len(cfg), oci.MediaTypeImageManifest, digest.FromString(image), len(image))
	for _, s := range []struct{ ct, body string }{
		{oci.MediaTypeImageManifest, image},
		{oci.MediaTypeImageIndex, index},
		{oci.MediaTypeImageManifest, artifact},
		{"", image},
		{oci.MediaTypeImageManifest, image[:len(image)-1] + `,"layers":[]}`},
		{oci.MediaTypeImageManifest, image[:len(image)-1] + `,"Layers":[]}`},
		{oci.MediaTypeImageManifest, image[:len(image)-2] + "\xff\xfe\"}}"},
		{oci.MediaTypeImageIndex, index[:len(index)-1] + `,"manifests":[]}`},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "pkg", "oci", "testdata", "manifests", "*.json"))
	for _, file := range files {
		if body, err := os.ReadFile(file); err == nil {
			f.Add("", body)
		}
	}

	var n atomic.Int64
	var mu sync.Mutex
	stored := map[digest.Digest]bool{digest.FromString(image): true}
	send := func(method, path, ct string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		req.Header.Set("Accept", oci.MediaTypeImageManifest+", "+oci.MediaTypeImageIndex+", "+oci.MediaTypeDockerManifest+", "+oci.MediaTypeDockerManifestList)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		tag := fmt.Sprintf("t%d", n.Add(1))
		d := digest.FromBytes(body)
		rec := send(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, contentType, body)
		if rec.Code >= 500 {
			t.Fatalf("PUT answered %d: %s", rec.Code, rec.Body.Bytes())
		}
		got := send(http.MethodGet, "/v2/"+repo+"/manifests/"+tag, "", nil)
		if rec.Code == http.StatusCreated {
			if rec.Header().Get("Docker-Content-Digest") != d.String() {
				t.Fatalf("201 with digest %q, want %s", rec.Header().Get("Docker-Content-Digest"), d)
			}
			if got.Code != http.StatusOK || !bytes.Equal(got.Body.Bytes(), body) {
				t.Fatalf("the accepted manifest's tag answers %d", got.Code)
			}
			mu.Lock()
			stored[d] = true
			mu.Unlock()
			return
		}
		if rec.Code < 400 {
			t.Fatalf("PUT answered %d", rec.Code)
		}
		if errs, err := oci.ParseEnvelope(rec.Body.Bytes()); err != nil || len(errs) == 0 {
			t.Fatalf("refusal %d without a spec error envelope: %s (%v)", rec.Code, rec.Body.Bytes(), err)
		}
		if got.Code != http.StatusNotFound {
			t.Fatalf("refused with %d, yet the tag answers %d", rec.Code, got.Code)
		}
		mu.Lock()
		before := stored[d]
		mu.Unlock()
		if byDigest := send(http.MethodHead, "/v2/"+repo+"/manifests/"+d.String(), "", nil); !before && byDigest.Code != http.StatusNotFound {
			t.Fatalf("refused with %d, yet the manifest %s answers %d", rec.Code, d, byDigest.Code)
		}
	})
}
