package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The client side of the benchmarks: the requests a registry client sends,
// streamed (a body is generated as the transport reads it; nothing holds
// more than the caller's buffer).

// seeds makes every generated blob of a process distinct, so no push finds
// its blob already stored (S3 If-None-Match would answer 412 after
// reading the body, which is not the cost of a first push).
var seeds atomic.Uint64

// newSource returns a cheap deterministic stream of pseudo-random bytes
// (ChaCha8), distinct for every call.
func newSource() io.Reader {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], seeds.Add(1))
	copy(seed[8:], "skiff-bench-generated-blob-data")
	return rand.NewChaCha8(seed)
}

// newBlob returns n fresh bytes and their digest.
func newBlob(n int) ([]byte, digest.Digest) {
	p := make([]byte, n)
	_, _ = io.ReadFull(newSource(), p)
	return p, digest.FromBytes(p)
}

// statusError is an unexpected answer.
func statusError(resp *http.Response, want int) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	return fmt.Errorf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, bytes.TrimSpace(body))
}

// do sends one request with body (length -1: unknown, sent chunked) and
// checks its status; the response body is drained and closed.
func (e *env) do(method, target string, hdr http.Header, body io.Reader, length int64, want int) (*http.Response, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	base, _ := url.Parse(e.base)
	req, err := http.NewRequest(method, base.ResolveReference(u).String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = length
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return nil, statusError(resp, want)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, nil
}

// withDigest adds ?digest=d to an upload Location, keeping its query.
func withDigest(loc string, d digest.Digest) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc // the request will fail and say why
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// startUpload opens a session: POST /v2/<repo>/blobs/uploads/, 202.
func (e *env) startUpload(repo string) (string, error) {
	resp, err := e.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil, 0, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	return location(resp)
}

func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: no Location in the answer", resp.Request.Method, resp.Request.URL.Path)
	}
	return loc, nil
}

// patch sends one PATCH to loc: a chunk with Content-Range "start-end"
// when contentRange is set, else a stream of unknown length. It returns
// the next Location.
func (e *env) patch(loc string, body io.Reader, length int64, contentRange string) (string, error) {
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	if contentRange != "" {
		hdr.Set("Content-Range", contentRange)
	}
	resp, err := e.do(http.MethodPatch, loc, hdr, body, length, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	return location(resp)
}

// commit finishes the session at loc: PUT ?digest=, with body as the last
// (or only) chunk when it is not nil, 201.
func (e *env) commit(loc string, d digest.Digest, body io.Reader, length int64) error {
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	if body == nil {
		body, length = http.NoBody, 0
	}
	_, err := e.do(http.MethodPut, withDigest(loc, d), hdr, body, length, http.StatusCreated)
	return err
}

// pushMonolithic pushes p as clients push a small blob: POST, then PUT
// ?digest= with the whole body.
func (e *env) pushMonolithic(repo string, p []byte, d digest.Digest) error {
	loc, err := e.startUpload(repo)
	if err != nil {
		return err
	}
	return e.commit(loc, d, bytes.NewReader(p), int64(len(p)))
}

// postBlob pushes p in one request: POST ?digest= with the body, 201.
func (e *env) postBlob(repo string, p []byte, d digest.Digest) error {
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	_, err := e.do(http.MethodPost, withDigest("/v2/"+repo+"/blobs/uploads/", d), hdr, bytes.NewReader(p), int64(len(p)), http.StatusCreated)
	return err
}

// headBlob sends HEAD /v2/<repo>/blobs/<d> and expects want.
func (e *env) headBlob(repo string, d digest.Digest, want int) error {
	_, err := e.do(http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), nil, nil, 0, want)
	return err
}

// pushChunked pushes size bytes of src in chunks of chunk bytes: POST,
// one PATCH per chunk with Content-Range and Content-Length, then PUT
// ?digest= without a body. The digest is computed as the bytes go out.
func (e *env) pushChunked(repo string, src io.Reader, size, chunk int64) (digest.Digest, error) {
	h := sha256.New()
	loc, err := e.startUpload(repo)
	if err != nil {
		return "", err
	}
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		body := io.TeeReader(io.LimitReader(src, n), h)
		if loc, err = e.patch(loc, body, n, fmt.Sprintf("%d-%d", off, off+n-1)); err != nil {
			return "", fmt.Errorf("chunk at %d: %w", off, err)
		}
	}
	d := digest.NewDigest(digest.SHA256, h)
	return d, e.commit(loc, d, nil, 0)
}

// pushStream pushes size bytes of src as crane and skopeo do: POST, ONE
// PATCH without Content-Range carrying the whole blob in a body of
// unknown length (chunked transfer encoding), then PUT ?digest=.
func (e *env) pushStream(repo string, src io.Reader, size int64) (digest.Digest, error) {
	h := sha256.New()
	loc, err := e.startUpload(repo)
	if err != nil {
		return "", err
	}
	if loc, err = e.patch(loc, io.TeeReader(io.LimitReader(src, size), h), -1, ""); err != nil {
		return "", err
	}
	d := digest.NewDigest(digest.SHA256, h)
	return d, e.commit(loc, d, nil, 0)
}

// putManifest sends PUT /v2/<repo>/manifests/<ref>, 201.
func (e *env) putManifest(repo, ref, mediaType string, body []byte) error {
	hdr := http.Header{"Content-Type": {mediaType}}
	_, err := e.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, hdr, bytes.NewReader(body), int64(len(body)), http.StatusCreated)
	return err
}

// listTags fetches /v2/<repo>/tags/list with the default page size and
// follows Link until the last page; it returns the number of tags and of
// pages.
func (e *env) listTags(repo string) (tags, pages int, err error) {
	next := "/v2/" + repo + "/tags/list"
	for next != "" {
		u, _ := url.Parse(e.base)
		ref, err := url.Parse(next)
		if err != nil {
			return 0, 0, err
		}
		resp, err := e.client.Get(u.ResolveReference(ref).String())
		if err != nil {
			return 0, 0, err
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		if resp.StatusCode != http.StatusOK {
			err = statusError(resp, http.StatusOK)
		} else {
			err = json.NewDecoder(resp.Body).Decode(&page)
		}
		resp.Body.Close()
		if err != nil {
			return 0, 0, err
		}
		tags += len(page.Tags)
		pages++
		next = nextLink(resp.Header.Get("Link"))
	}
	return tags, pages, nil
}

// nextLink returns the target of `<target>; rel="next"`, or "".
func nextLink(h string) string {
	target, params, ok := strings.Cut(h, ";")
	if !ok || !strings.Contains(params, `rel="next"`) {
		return ""
	}
	return strings.Trim(strings.TrimSpace(target), "<>")
}

// image is the content of one pushed image: its config and layer blobs.
type image struct {
	config v1.Descriptor
	layers []v1.Descriptor
}

// pushImageBlobs pushes a config and n distinct layers of layerSize bytes
// into repo, each in one request (setup, not measured).
func (e *env) pushImageBlobs(repo string, n, layerSize int) (image, error) {
	var img image
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"seed":"%d"}}}`, seeds.Add(1)))
	img.config = v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if err := e.postBlob(repo, cfg, img.config.Digest); err != nil {
		return img, err
	}
	for range n {
		p, d := newBlob(layerSize)
		if err := e.postBlob(repo, p, d); err != nil {
			return img, err
		}
		img.layers = append(img.layers, v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(p))})
	}
	return img, nil
}

// manifest returns an image manifest of img; the annotation makes each
// variant a distinct manifest.
func (img image) manifest(variant string) []byte {
	m := v1.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   v1.MediaTypeImageManifest,
		Config:      img.config,
		Layers:      img.layers,
		Annotations: map[string]string{"org.skiff.bench.variant": variant},
	}
	body, err := json.Marshal(m)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return body
}

// index returns an image index of children; the annotation makes each
// variant a distinct index.
func index(children []v1.Descriptor, variant string) []byte {
	ix := v1.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   v1.MediaTypeImageIndex,
		Manifests:   children,
		Annotations: map[string]string{"org.skiff.bench.variant": variant},
	}
	body, err := json.Marshal(ix)
	if err != nil {
		panic(err)
	}
	return body
}
