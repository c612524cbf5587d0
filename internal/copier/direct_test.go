package copier_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/copier"
	"github.com/skiff-registry/skiff/internal/servertest"
)

// skiffOnAWS is the whole registry on the S3 and DynamoDB stand-ins, whose
// store presigns parts: it advertises direct uploads, with 5 MiB parts.
func skiffOnAWS(t *testing.T) string {
	t.Helper()
	cfg := servertest.Config(t, config.BackendAWS)
	cfg.DirectPart = 5 << 20
	host, _ := servertest.Start(t, cfg)
	return host
}

// tamper counts what goes where and, when on, flips a byte of every part
// PUT to a presigned URL (a request carrying X-Amz-Signature).
type tamper struct {
	on    atomic.Bool
	parts atomic.Int64
	patch atomic.Int64 // bytes sent by PATCH
	next  http.RoundTripper
}

func (tp *tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPatch && r.Body != nil {
		r = r.Clone(r.Context())
		r.Body = &countingBody{r.Body, &tp.patch}
	}
	if r.Method == http.MethodPut && r.URL.Query().Get("X-Amz-Signature") != "" {
		tp.parts.Add(1)
		if tp.on.Load() {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			b[len(b)/2] ^= 0xff
			r = r.Clone(r.Context())
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
	return tp.next.RoundTrip(r)
}

// TestCopyDirect: a 12 MiB layer goes into skiff on S3 by direct upload,
// three parts PUT to presigned URLs and no PATCH through the registry,
// and reads back; bytes changed on their way to the store are refused by
// the registry's own hash and never become a blob.
func TestCopyDirect(t *testing.T) {
	t.Parallel()
	up, dst := newUpstream(t), skiffOnAWS(t)
	img, err := random.Image(12<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(up.ref(t, "big:v1"), img); err != nil {
		t.Fatal(err)
	}
	tp := &tamper{next: http.DefaultTransport}
	c, events := newCopier(t, copier.Options{Transport: tp})
	sum, err := c.Copy(t.Context(), up.host+"/big:v1", dst+"/mirror/big")
	if err != nil {
		t.Fatal(err)
	}
	if sum.BlobsCopied != 2 {
		t.Errorf("summary %+v, want the config and the layer copied", sum)
	}
	direct := 0
	for _, e := range *events {
		if e.Kind == copier.KindBlobCopied && e.Note == "direct upload" {
			direct++
		}
	}
	if direct != 1 || tp.parts.Load() != 3 || tp.patch.Load() > 1<<20 {
		t.Errorf("%d blobs by direct upload in %d parts, %d bytes by PATCH; want the layer alone, in 3 parts, and only the config by PATCH", direct, tp.parts.Load(), tp.patch.Load())
	}
	layer := imageBlobs(t, img)[1]
	got, err := remote.Image(mustRef(t, dst+"/mirror/big:v1"))
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := got.Layers()
	rc, err := ls[0].Compressed() // verifies the digest as it reads
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ls[0].Size()
	if n, err := io.Copy(io.Discard, rc); err != nil || n != want {
		t.Errorf("reading the layer back: %d bytes, %v", n, err)
	}
	rc.Close()

	tp.on.Store(true)
	other, err := random.Image(9<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(up.ref(t, "big:v2"), other); err != nil {
		t.Fatal(err)
	}
	_, err = c.Copy(t.Context(), up.host+"/big:v2", dst+"/mirror/big")
	if err == nil || !strings.Contains(err.Error(), "DIGEST_INVALID") || !strings.Contains(err.Error(), "direct upload") {
		t.Fatalf("a copy whose parts changed on the way: %v, want DIGEST_INVALID from the registry", err)
	}
	bad := imageBlobs(t, other)[1]
	if s := status(t, dst, "mirror/big", "blobs", bad); s != http.StatusNotFound {
		t.Errorf("the refused layer %s is there: HEAD %d", bad, s)
	}
	if s := status(t, dst, "mirror/big", "blobs", layer); s != http.StatusOK {
		t.Errorf("the first layer: HEAD %d", s)
	}
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
