package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// httpTimeout bounds one raw API request made by a test.
const httpTimeout = 2 * time.Minute

// apiResponse is a fully read response.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r apiResponse) String() string {
	body := string(r.body)
	if len(body) > 2000 {
		body = body[:2000] + "..."
	}
	return fmt.Sprintf("status %d, headers %v, body %q", r.status, r.header, body)
}

// send makes one request and reads the whole response; it fails the test on
// a transport error. body may be nil.
func send(t *testing.T, method, url string, header http.Header, body io.Reader) apiResponse {
	t.Helper()
	resp, err := trySend(method, url, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

func trySend(method, url string, header http.Header, body io.Reader) (apiResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return apiResponse{}, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("read body: %w", err)
	}
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

func acceptManifests() http.Header {
	return http.Header{"Accept": {strings.Join(manifestAccept, ", ")}}
}

// verifyRemote checks that repo holds c: ref (a tag or digest) resolves to
// the root with identical bytes, every child manifest is fetchable by digest
// (GET and HEAD), and every blob reads back byte for byte.
func (c *content) verifyRemote(t *testing.T, reg *registry, repo, ref string) {
	t.Helper()
	root := c.objects[c.root.Digest]
	resp := send(t, http.MethodGet, reg.url("/v2/"+repo+"/manifests/"+ref), reg.authed(acceptManifests(), repo), nil)
	if resp.status != http.StatusOK {
		t.Errorf("GET %s:%s: want 200, got %s", repo, ref, resp)
	} else {
		if got := digest.FromBytes(resp.body); got != c.root.Digest {
			t.Errorf("GET %s:%s: manifest digest changed: got %s, want %s\ngot body: %s\nwant body: %s",
				repo, ref, got, c.root.Digest, resp.body, root.data)
		}
		if got := resp.header.Get("Docker-Content-Digest"); got != "" && got != c.root.Digest.String() {
			t.Errorf("GET %s:%s: Docker-Content-Digest %s, want %s", repo, ref, got, c.root.Digest)
		}
		if got := resp.header.Get("Content-Type"); got != c.root.MediaType {
			t.Errorf("GET %s:%s: Content-Type %q, want %q", repo, ref, got, c.root.MediaType)
		}
	}
	for _, d := range c.digests() {
		o := c.objects[d]
		kind := "blobs"
		header := http.Header{}
		if o.isManifest {
			kind, header = "manifests", acceptManifests()
		}
		u := reg.url("/v2/" + repo + "/" + kind + "/" + d.String())
		head := send(t, http.MethodHead, u, reg.authed(header, repo), nil)
		if head.status != http.StatusOK {
			t.Errorf("HEAD %s %s@%s: want 200, got %s", o.desc.MediaType, repo, d, head)
		} else if cl := head.header.Get("Content-Length"); cl != strconv.FormatInt(o.desc.Size, 10) {
			t.Errorf("HEAD %s %s@%s: Content-Length %q, want %d", o.desc.MediaType, repo, d, cl, o.desc.Size)
		}
		get := send(t, http.MethodGet, u, reg.authed(header, repo), nil)
		switch {
		case get.status != http.StatusOK:
			t.Errorf("GET %s %s@%s: want 200, got %s", o.desc.MediaType, repo, d, get)
		case !bytes.Equal(get.body, o.data):
			t.Errorf("GET %s %s@%s: content differs: got %d bytes with digest %s, want %d bytes",
				o.desc.MediaType, repo, d, len(get.body), digest.FromBytes(get.body), len(o.data))
		}
	}
}

// readManifest fetches and decodes a manifest or index.
func readManifest(t *testing.T, reg *registry, repo, ref string) (manifest, apiResponse) {
	t.Helper()
	resp := send(t, http.MethodGet, reg.url("/v2/"+repo+"/manifests/"+ref), reg.authed(acceptManifests(), repo), nil)
	if resp.status != http.StatusOK {
		t.Fatalf("GET %s:%s: want 200, got %s", repo, ref, resp)
	}
	var m manifest
	if err := json.Unmarshal(resp.body, &m); err != nil {
		t.Fatalf("GET %s:%s: decode: %v\n%s", repo, ref, err, resp.body)
	}
	return m, resp
}

// errorCodes extracts the codes of an OCI error envelope.
func errorCodes(body []byte) []string {
	var env struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil
	}
	codes := make([]string, 0, len(env.Errors))
	for _, e := range env.Errors {
		codes = append(codes, e.Code)
	}
	return codes
}
