package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// The ingest origin (-ingest URL): a `skiff serve --ingest` process, as
// the stack runs it on ECS behind an internal load balancer that
// CloudFront reaches as a VPC origin. With it, the viewer-request
// function sends every upload route there (routes.go), and the body
// streams through: no payload limit, nothing buffered. It gets the
// headers CloudFront sends any origin (originHeaders: the origin secret,
// X-Forwarded-Host, the viewer's address), and no redirect is followed.

// newIngest returns the handler that forwards to the ingest service at
// target (http://HOST:PORT).
func newIngest(target *url.URL, originSecret string) http.Handler {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header = originHeaders(pr.In, originSecret)
			// The load balancer's listener is plain HTTP; it says so.
			pr.Out.Header.Set("X-Forwarded-Proto", "http")
		},
		Transport: &http.Transport{
			Proxy:               nil, // a local process: never through an HTTP proxy from the environment
			DialContext:         dialer.DialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			// Bodies of hundreds of MiB: big writes, few syscalls (the
			// default is 4 KiB).
			WriteBufferSize: 256 << 10,
			ReadBufferSize:  256 << 10,
		},
		BufferPool: bufferPool{},
		// Stream both ways: a chunked PATCH of a GiB goes through as it comes.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			plainError(w, http.StatusBadGateway, "the ingest service could not be reached")
		},
	}
}

// bufferPool hands the proxy 256 KiB copy buffers (its default is 32 KiB).
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { return make([]byte, 256<<10) }}

func (bufferPool) Get() []byte  { return buffers.Get().([]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(b) } //nolint:staticcheck // a slice header per Put is fine here

// parseIngest reads -ingest: an http URL with no path, query or fragment.
func parseIngest(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-ingest: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("-ingest: %q is not http://HOST:PORT", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// recorder notes the status and size of an answer, for the log line.
type recorder struct {
	http.ResponseWriter
	status, n int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.n += n
	return n, err
}

// Flush lets the proxy stream.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
