package copier_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/copier"
	"github.com/skiff-registry/skiff/internal/servertest"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// skiffServer is the whole registry on an httptest server (embedded
// store): mirror/ takes sparse indexes, required/ requires linux/amd64,
// manifests/ takes manifests without their blobs; everything else is strict.
func skiffServer(t *testing.T) string {
	t.Helper()
	cfg := servertest.Config(t, config.BackendLocal)
	cfg.DefaultPolicies = []oci.Policy{
		{Prefix: "mirror", IndexChildren: oci.IndexChildrenNone, ImageBlobs: oci.ImageBlobsRequired},
		{Prefix: "required", IndexChildren: oci.IndexChildrenPlatforms, Platforms: []string{"linux/amd64"}, ImageBlobs: oci.ImageBlobsRequired},
		{Prefix: "manifests", IndexChildren: oci.IndexChildrenNone, ImageBlobs: oci.ImageBlobsOptional},
	}
	host, _ := servertest.Start(t, cfg)
	return host
}

// upstream is go-containerregistry's registry (with the referrers API) on
// an httptest server, holding a signed three-platform index.
type upstream struct {
	host   string
	index  v1.ImageIndex
	images map[string]v1.Image // by platform
	sig    v1.Image            // an OCI 1.1 referrer of the index
	sbom   v1.Image            // a referrer of the amd64 image
	tagSig v1.Image            // cosign's sha256-<hex>.sig of the index
}

var threePlatforms = []string{"linux/amd64", "linux/arm64/v8", "linux/s390x"}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	ts := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(ts.Close)
	u := &upstream{host: strings.TrimPrefix(ts.URL, "http://"), images: map[string]v1.Image{}}
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range threePlatforms {
		img, err := random.Image(4096, 2)
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		u.images[p] = img
		pl, err := oci.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: pl.OS, Architecture: pl.Architecture, Variant: pl.Variant},
		}})
	}
	u.index = idx
	if err := remote.WriteIndex(u.ref(t, "app:v1"), idx); err != nil {
		t.Fatal(err)
	}
	u.sig = u.referrer(t, idx, "application/vnd.dev.cosign.artifact.sig.v1+json")
	u.sbom = u.referrer(t, u.images["linux/amd64"], "application/spdx+json")
	tagSig, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	u.tagSig = tagSig
	d, _ := idx.Digest()
	if err := remote.Write(u.ref(t, "app:"+strings.Replace(d.String(), ":", "-", 1)+".sig"), tagSig); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *upstream) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(u.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// referrer pushes an artifact whose subject is of and returns it.
func (u *upstream) referrer(t *testing.T, of remote.Taggable, configType string) v1.Image {
	t.Helper()
	type described interface {
		Digest() (v1.Hash, error)
		MediaType() (types.MediaType, error)
		Size() (int64, error)
	}
	o := of.(described)
	d, _ := o.Digest()
	mt, _ := o.MediaType()
	size, _ := o.Size()
	art, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	art = mutate.MediaType(art, types.OCIManifestSchema1)
	art = mutate.ConfigMediaType(art, types.MediaType(configType))
	art = mutate.Subject(art, v1.Descriptor{MediaType: mt, Digest: d, Size: size}).(v1.Image)
	ad, _ := art.Digest()
	if err := remote.Write(u.ref(t, "app@"+ad.String()), art); err != nil {
		t.Fatal(err)
	}
	return art
}

// counter counts the requests a copier sends, by method and path kind.
type counter struct {
	mu   sync.Mutex
	reqs []string
	next http.RoundTripper
	fail func(*http.Request) error
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		if err := fail(r); err != nil {
			return nil, err
		}
	}
	return c.next.RoundTrip(r)
}

// uploads counts the blob upload requests (POST, PATCH, PUT) to host.
func (c *counter) uploads(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reqs {
		if strings.Contains(r, "/blobs/uploads/") && !strings.HasPrefix(r, "HEAD") && !strings.HasPrefix(r, "GET") {
			n++
		}
	}
	return n
}

func newCopier(t *testing.T, o copier.Options) (*copier.Copier, *[]copier.Event) {
	t.Helper()
	var mu sync.Mutex
	var events []copier.Event
	o.Insecure = true
	o.Events = func(e copier.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	c, err := copier.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c, &events
}

func platforms(t *testing.T, ss ...string) []ocispec.Platform {
	t.Helper()
	var out []ocispec.Platform
	for _, s := range ss {
		p, err := oci.ParseKnownPlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// status returns the HTTP status of a HEAD of a manifest or blob.
func status(t *testing.T, host, repo, kind string, d fmt.Stringer) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/"+kind+"/"+d.String(), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func imageBlobs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCopyPartialIndex: one platform of a signed index into a sparse
// repository keeps the index's digest; the amd64 image, the index's
// signature (a referrer and a digest tag) and the amd64 image's SBOM come
// along; nothing of the other platforms does; a second run copies nothing
// and says so.
func TestCopyPartialIndex(t *testing.T) {
	t.Parallel()
	up, dst := newUpstream(t), skiffServer(t)
	c, events := newCopier(t, copier.Options{Selection: copier.Selection{Platforms: platforms(t, "linux/amd64"), Referrers: true, DigestTags: true}})
	ctx := t.Context()
	sum, err := c.Copy(ctx, up.host+"/app:v1", dst+"/mirror/app")
	if err != nil {
		t.Fatal(err)
	}
	idx := digestOf(t, up.index)
	got, err := remote.Head(mustRef(t, dst+"/mirror/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != idx {
		t.Errorf("mirror/app:v1 is %s, the upstream index %s", got.Digest, idx)
	}
	for p, img := range up.images {
		want := http.StatusNotFound
		if p == "linux/amd64" {
			want = http.StatusOK
		}
		if s := status(t, dst, "mirror/app", "manifests", digestOf(t, img)); s != want {
			t.Errorf("%s image: HEAD %d, want %d", p, s, want)
		}
		for _, b := range imageBlobs(t, img) {
			if s := status(t, dst, "mirror/app", "blobs", b); s != want {
				t.Errorf("%s blob %s: HEAD %d, want %d", p, b, s, want)
			}
		}
	}
	for what, img := range map[string]v1.Image{"signature": up.sig, "sbom": up.sbom, "digest-tag signature": up.tagSig} {
		if s := status(t, dst, "mirror/app", "manifests", digestOf(t, img)); s != http.StatusOK {
			t.Errorf("the %s: HEAD %d", what, s)
		}
	}
	refs, err := remote.Referrers(mustRef(t, dst+"/mirror/app@"+idx.String()).(name.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := refs.IndexManifest(); len(m.Manifests) != 1 || m.Manifests[0].Digest != digestOf(t, up.sig) {
		t.Errorf("referrers of the index in skiff: %+v, want the signature", m)
	}
	sigTag := strings.Replace(idx.String(), ":", "-", 1) + ".sig"
	if d, err := remote.Head(mustRef(t, dst+"/mirror/app:"+sigTag)); err != nil || d.Digest != digestOf(t, up.tagSig) {
		t.Errorf("digest tag %s: %v %v", sigTag, d, err)
	}
	// amd64: config and 2 layers; signature, sbom and tag signature: a
	// config and a layer each.
	if sum.BlobsCopied != 3+3*2 || sum.ManifestsCopied != 2+3 || sum.Images != 1 {
		t.Errorf("first run: %+v, want 9 blobs and 5 manifests", sum)
	}
	*events = nil
	again, err := c.Copy(ctx, up.host+"/app:v1", dst+"/mirror/app")
	if err != nil {
		t.Fatal(err)
	}
	if again.Copied() || again.BlobsCopied != 0 || again.ManifestsCopied != 0 || again.ManifestsSkipped != 5 {
		t.Errorf("second run: %+v, want nothing copied and 5 manifests skipped", again)
	}
	last := (*events)[len(*events)-1]
	if last.Kind != copier.KindImageDone || !strings.Contains(last.Note, "nothing to copy") {
		t.Errorf("second run's last event: %+v, want image-done saying nothing to copy", last)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCopyIntoStrict: into a strict repository a partial copy fails before
// a blob is sent, with the destination's own error; into one whose policy
// requires the chosen platform it succeeds; a whole index goes anywhere.
func TestCopyIntoStrict(t *testing.T) {
	t.Parallel()
	up, dst := newUpstream(t), skiffServer(t)
	ctx := t.Context()
	ct := &counter{next: http.DefaultTransport}
	c, _ := newCopier(t, copier.Options{Selection: copier.Selection{Platforms: platforms(t, "linux/amd64")}, Transport: ct})
	_, err := c.Copy(ctx, up.host+"/app:v1", dst+"/strict/app")
	if err == nil || !strings.Contains(err.Error(), "MANIFEST_BLOB_UNKNOWN") || !strings.Contains(err.Error(), "refuses index") {
		t.Fatalf("partial copy into a strict repository: %v, want the refusal with MANIFEST_BLOB_UNKNOWN", err)
	}
	if !strings.Contains(err.Error(), up.host+"/app:v1") {
		t.Errorf("the error does not name the image: %v", err)
	}
	if n := ct.uploads(dst); n != 0 {
		t.Errorf("the refused copy made %d blob upload requests, want none", n)
	}
	for _, b := range imageBlobs(t, up.images["linux/amd64"]) {
		if s := status(t, dst, "strict/app", "blobs", b); s != http.StatusNotFound {
			t.Errorf("blob %s is in strict/app after the refusal: %d", b, s)
		}
	}

	sum, err := c.Copy(ctx, up.host+"/app:v1", dst+"/required/app")
	if err != nil {
		t.Fatalf("into a repository requiring linux/amd64: %v", err)
	}
	if sum.BlobsCopied != 3 || sum.ManifestsCopied != 2 {
		t.Errorf("into required/app: %+v", sum)
	}
	whole, _ := newCopier(t, copier.Options{})
	sum, err = whole.Copy(ctx, up.host+"/app:v1", dst+"/strict/whole")
	if err != nil {
		t.Fatalf("the whole index into a strict repository: %v", err)
	}
	if sum.BlobsCopied != 9 || sum.ManifestsCopied != 4 {
		t.Errorf("whole index: %+v", sum)
	}
}

// TestCopyResumes: a copy cut off after some blobs, run again, uploads
// only the blobs that were not finished.
func TestCopyResumes(t *testing.T) {
	t.Parallel()
	up, dst := newUpstream(t), skiffServer(t)
	ctx := t.Context()
	img := up.images["linux/arm64/v8"]
	blobs := imageBlobs(t, img)
	victim := blobs[2].String()
	ct := &counter{next: http.DefaultTransport, fail: func(r *http.Request) error {
		if r.Method == http.MethodPut && r.URL.Query().Get("digest") == victim {
			return errors.New("cut off")
		}
		return nil
	}}
	c, _ := newCopier(t, copier.Options{Transport: ct, Jobs: 1})
	src := up.host + "/app@" + digestOf(t, img).String()
	if _, err := c.Copy(ctx, src, dst+"/mirror/resume"); err == nil {
		t.Fatal("the cut copy succeeded")
	}
	stored := 0
	for _, b := range blobs {
		if status(t, dst, "mirror/resume", "blobs", b) == http.StatusOK {
			stored++
		}
	}
	if stored != 2 {
		t.Fatalf("%d blobs stored by the cut copy, want 2", stored)
	}
	again := &counter{next: http.DefaultTransport}
	c2, _ := newCopier(t, copier.Options{Transport: again})
	sum, err := c2.Copy(ctx, src, dst+"/mirror/resume")
	if err != nil {
		t.Fatal(err)
	}
	if sum.BlobsCopied != 1 || sum.BlobsSkipped != 2 {
		t.Errorf("rerun: %+v, want 1 blob copied and 2 skipped", sum)
	}
	// One blob: POST, PATCH, PUT.
	if n := again.uploads(dst); n != 3 {
		t.Errorf("rerun made %d upload requests, want 3 (one blob): %v", n, again.reqs)
	}
}

// TestCopyTags copies the tags matching a pattern, each with its own tag.
func TestCopyTags(t *testing.T) {
	t.Parallel()
	up, dst := newUpstream(t), skiffServer(t)
	for _, tag := range []string{"v2", "dev"} {
		if err := remote.Write(up.ref(t, "app:"+tag), up.images["linux/s390x"]); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := newCopier(t, copier.Options{Selection: copier.Selection{Tags: regexp.MustCompile(`^v[0-9]+$`)}})
	sum, err := c.Copy(t.Context(), up.host+"/app", dst+"/tags/app")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Images != 2 {
		t.Errorf("%d images copied, want v1 and v2", sum.Images)
	}
	tags, err := remote.List(mustRef(t, dst+"/tags/app:x").Context())
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(tags); !slices.Equal(tags, []string{"v1", "v2"}) {
		t.Errorf("tags %v, want v1 v2", tags)
	}
}

// TestCopyErrors: each bad request fails naming what was wrong, and
// writes nothing.
func TestCopyErrors(t *testing.T) {
	t.Parallel()
	up, dst := newUpstream(t), skiffServer(t)
	for _, tc := range []struct {
		name     string
		opts     copier.Options
		src, dst string
		want     string
	}{
		{"no such platform", copier.Options{Selection: copier.Selection{Platforms: platforms(t, "linux/riscv64")}}, up.host + "/app:v1", dst + "/mirror/e1",
			"none of its 3 children is for linux/riscv64 (it has linux/amd64, linux/arm64/v8, linux/s390x)"},
		{"no such tag", copier.Options{}, up.host + "/app:nope", dst + "/mirror/e2", "MANIFEST_UNKNOWN"},
		{"repository source", copier.Options{}, up.host + "/app", dst + "/mirror/e3", "names a repository, not an image"},
		{"tags from an image", copier.Options{Selection: copier.Selection{Tags: regexp.MustCompile("v.*")}}, up.host + "/app:v1", dst + "/mirror/e4", "must be a repository"},
		{"no tag matches", copier.Options{Selection: copier.Selection{Tags: regexp.MustCompile("^zzz$")}}, up.host + "/app", dst + "/mirror/e5", "no tag of"},
		{"unreachable", copier.Options{}, "127.0.0.1:1/app:v1", dst + "/mirror/e6", "connection refused"},
		{"no registry", copier.Options{}, up.host + "/app:v1", "mirror", "must name its registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCopier(t, tc.opts)
			sum, err := c.Copy(t.Context(), tc.src, tc.dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if sum.Copied() {
				t.Errorf("the failed copy wrote: %+v", sum)
			}
		})
	}
}

// TestCopyFillsBlobs: a destination that holds an image's manifest without
// its blobs (a repository whose policy makes blobs optional) gets the blobs
// from a copy: a manifest there is no proof of its blobs.
func TestCopyFillsBlobs(t *testing.T) {
	t.Parallel()
	up, dst := newUpstream(t), skiffServer(t)
	img := up.images["linux/s390x"]
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf(t, img)
	if err := remote.Put(mustRef(t, dst+"/manifests/app@"+d.String()), rawTaggable{raw, types.OCIManifestSchema1}); err != nil {
		t.Fatalf("the manifest alone: %v", err)
	}
	c, _ := newCopier(t, copier.Options{})
	sum, err := c.Copy(t.Context(), up.host+"/app@"+d.String(), dst+"/manifests/app")
	if err != nil {
		t.Fatal(err)
	}
	if sum.BlobsCopied != 3 || sum.ManifestsSkipped != 1 {
		t.Errorf("summary %+v, want the 3 blobs copied and the manifest skipped", sum)
	}
	for _, b := range imageBlobs(t, img) {
		if s := status(t, dst, "manifests/app", "blobs", b); s != http.StatusOK {
			t.Errorf("blob %s: HEAD %d", b, s)
		}
	}
}

type rawTaggable struct {
	raw []byte
	mt  types.MediaType
}

func (r rawTaggable) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawTaggable) MediaType() (types.MediaType, error) { return r.mt, nil }
