package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	mib = 1024 * 1024
	// chunk is the PATCH size forced on regctl.
	chunk = 1 * mib
	// bigLayer is large enough for a dozen chunks.
	bigLayer = 12 * mib
	// externalStreamLayer is the layer crane and skopeo send in one PATCH
	// to an external registry: under the 4 MiB body cap of the Lambda
	// functions, which answer a larger body 413 (those clients can't
	// chunk).
	externalStreamLayer = 3 * mib
)

// TestChunkedPush pushes an image with a 12 MiB layer three ways: regctl in
// 1 MiB chunked PATCHes, and crane and skopeo with one streaming PATCH each
// (of 3 MiB on an external registry: externalStreamLayer). A recording
// proxy in front of the server proves each client really used that upload
// style; the layer must read back unchanged.
func TestChunkedPush(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	rec := newRecordingProxy(t, reg.host)
	streamLayer := bigLayer
	if reg.external {
		streamLayer = externalStreamLayer
	}

	tests := []struct {
		name  string
		tools []string
		layer int // bytes of random data in the layer
		push  func(tb *toolbox, layout, dst string)
		check func(t *testing.T, reqs []recordedRequest)
	}{
		{
			name:  "regctl",
			tools: []string{"regctl"},
			layer: bigLayer,
			push: func(tb *toolbox, layout, dst string) {
				tb.regctlPlainHTTP(rec.host, "--blob-chunk", fmt.Sprint(chunk), "--blob-max", fmt.Sprint(chunk))
				tb.run("regctl", "image", "copy", "ocidir://"+layout+":v1", dst)
			},
			check: func(t *testing.T, reqs []recordedRequest) {
				// regctl raises its chunk size to the server's
				// OCI-Chunk-Min-Length (skiff: the S3 part size).
				size := int64(chunk)
				if m := chunkMinLength(reqs); m > size {
					t.Logf("server sent OCI-Chunk-Min-Length %d: regctl uses chunks of that size instead of %d", m, chunk)
					size = m
				}
				n := 0
				for _, p := range patches(reqs) {
					if p.bodyBytes > size {
						t.Errorf("regctl sent a PATCH of %d bytes, above its chunk size %d", p.bodyBytes, size)
					}
					if p.contentRange == "" {
						t.Errorf("regctl sent a PATCH without Content-Range: %v", p)
					}
					if p.bodyBytes > 0 {
						n++
					}
				}
				if want := int((bigLayer + size - 1) / size); n < want || n < 2 {
					t.Errorf("regctl sent %d non-empty PATCHes, want at least %d chunks: %v", n, max(want, 2), patches(reqs))
				}
			},
		},
		{
			name:  "crane",
			tools: []string{"crane"},
			layer: streamLayer,
			push: func(tb *toolbox, layout, dst string) {
				tb.run("crane", "push", "--insecure", layout, dst)
			},
			check: requireStreamingPatch(streamLayer),
		},
		{
			name:  "skopeo",
			tools: []string{"skopeo"},
			layer: streamLayer,
			push: func(tb *toolbox, layout, dst string) {
				tb.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+dst)
			},
			check: requireStreamingPatch(streamLayer),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := newToolbox(t, tc.tools...)
			// The clients talk to the proxy: the credentials are for it.
			reg.clientCredentials(tb, rec.host)
			// Own bytes per client: a blob another client already pushed
			// would be skipped (HEAD 200, or mounted) and prove nothing.
			img := newImage(t, "chunked/"+tc.name, threePlatforms[0], tc.layer)
			layout := filepath.Join(t.TempDir(), "layout")
			img.writeLayout(t, layout, "v1")
			repo := reg.repo("chunked/" + tc.name)

			tc.push(tb, layout, rec.host+"/"+repo+":v1")

			reqs := rec.uploads(repo)
			t.Logf("upload requests seen by the proxy:\n%s", formatRequests(reqs))
			tc.check(t, reqs)
			img.verifyRemote(t, reg, repo, "v1")
		})
	}
}

// requireStreamingPatch checks that the whole layer (of size bytes of
// data) went in one PATCH.
func requireStreamingPatch(size int) func(t *testing.T, reqs []recordedRequest) {
	return func(t *testing.T, reqs []recordedRequest) {
		t.Helper()
		for _, p := range patches(reqs) {
			if p.bodyBytes >= int64(size) {
				return
			}
		}
		t.Errorf("no PATCH carried the whole %d-byte layer; PATCHes seen: %v", size, patches(reqs))
	}
}

func patches(reqs []recordedRequest) []recordedRequest {
	var out []recordedRequest
	for _, r := range reqs {
		if r.method == http.MethodPatch {
			out = append(out, r)
		}
	}
	return out
}

// chunkMinLength is the largest OCI-Chunk-Min-Length the server answered.
func chunkMinLength(reqs []recordedRequest) int64 {
	var m int64
	for _, r := range reqs {
		if v, err := strconv.ParseInt(r.chunkMin, 10, 64); err == nil && v > m {
			m = v
		}
	}
	return m
}

func formatRequests(reqs []recordedRequest) string {
	lines := make([]string, len(reqs))
	for i, r := range reqs {
		lines[i] = "    " + r.String()
	}
	return strings.Join(lines, "\n")
}

// recordedRequest is what the proxy saw of one request.
type recordedRequest struct {
	method        string
	path          string
	contentRange  string
	contentLength int64 // -1 when streamed without Content-Length
	bodyBytes     int64 // bytes actually forwarded
	status        int
	chunkMin      string // OCI-Chunk-Min-Length of the response
}

func (r recordedRequest) String() string {
	s := fmt.Sprintf("%s %s Content-Range=%q Content-Length=%d body=%d -> %d",
		r.method, r.path, r.contentRange, r.contentLength, r.bodyBytes, r.status)
	if r.chunkMin != "" {
		s += " OCI-Chunk-Min-Length=" + r.chunkMin
	}
	return s
}

// recordingProxy is a reverse proxy in front of the registry that records
// every request. It keeps the client's Host header, so absolute Location
// URLs the server builds point back at the proxy, and it points a token
// realm on the registry's own address at itself: a registry with a fixed
// realm (the Lambda front door's SKIFF_REALM) names its own address, and
// clients refuse a realm on another loopback address than the registry's
// (go-containerregistry: "realm host is a private or link-local address").
type recordingProxy struct {
	host string
	mu   sync.Mutex
	reqs []recordedRequest
}

func newRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	p := &recordingProxy{}
	backend := &url.URL{Scheme: "http", Host: target}
	srv := httptest.NewUnstartedServer(nil)
	p.host = srv.Listener.Addr().String()
	rp := &httputil.ReverseProxy{
		Director: func(r *http.Request) {
			r.URL.Scheme, r.URL.Host = backend.Scheme, backend.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
				resp.Header.Set("WWW-Authenticate", strings.ReplaceAll(ch, `realm="http://`+target+`/`, `realm="http://`+p.host+`/`))
			}
			return nil
		},
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recordedRequest{
			method:        r.Method,
			path:          r.URL.Path,
			contentRange:  r.Header.Get("Content-Range"),
			contentLength: r.ContentLength,
		}
		body := &countingReader{r: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = body
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(sw, r)
		rec.bodyBytes, rec.status = body.n.Load(), sw.status
		rec.chunkMin = w.Header().Get("OCI-Chunk-Min-Length")
		p.mu.Lock()
		p.reqs = append(p.reqs, rec)
		p.mu.Unlock()
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// uploads returns the upload requests (POST, PATCH, PUT, ...) recorded for repo.
func (p *recordingProxy) uploads(repo string) []recordedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []recordedRequest
	for _, r := range p.reqs {
		if strings.HasPrefix(r.path, "/v2/"+repo+"/blobs/uploads/") {
			out = append(out, r)
		}
	}
	return out
}

// count returns how many method requests for path got status.
func (p *recordingProxy) count(method, path string, status int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.reqs {
		if r.method == method && r.path == path && r.status == status {
			n++
		}
	}
	return n
}

// countingReader counts atomically: the proxy's transport may still be
// reading the body in its own goroutine when ServeHTTP returns.
type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush keeps streaming responses streaming through the proxy.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
