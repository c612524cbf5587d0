package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/internal/deploy"
)

// Proxy mode (-proxy): instead of running the bootstraps under emulators,
// the front door forwards each request over HTTP to the function's
// deployed Function URL, as CloudFront forwards to its origins. It is the
// front door of the LocalStack run (localstack/test.sh), where the stack's
// functions and Function URLs are real but CloudFront is not (LocalStack's
// free edition has none).
//
// What it does as the distribution does: the same origin selection as
// its viewer-request function (routes.go); every viewer header but Host (managed policy
// AllViewerExceptHostHeader), Host naming the Function URL; the
// viewer-request CloudFront Function's X-Forwarded-Host (the viewer's
// Host, replacing a client's) and X-Skiff-Viewer-Ip (the viewer's address); X-Forwarded-For extended with the viewer's
// address; the viewer's X-Forwarded-Proto dropped (the Function URL sets
// its own); the origin secret header; no redirect followed and no body
// re-encoded. Like the Function URL in AWS, and unlike LocalStack's, it
// refuses a request whose event would exceed Lambda's 6 MB payload
// (front.serve, before forwarding).

// forwarder holds the Function URL of each function and the client that
// reaches them.
type forwarder struct {
	upstreams map[string]*url.URL
	client    *http.Client
}

// newForwarder returns a forwarder to upstreams. A non-empty connect
// (host:port) is dialled for every upstream instead of its own host: the
// request still names the Function URL's host, so LocalStack routes it,
// but no DNS is needed for *.lambda-url.<region>.localhost.localstack.cloud.
func newForwarder(upstreams map[string]*url.URL, connect string) *forwarder {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		// The functions are local: never through an HTTP proxy from the
		// environment.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if connect != "" {
				addr = connect
			}
			return dialer.DialContext(ctx, network, addr)
		},
		// Bodies travel as they are: no Accept-Encoding added, nothing
		// decompressed.
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	return &forwarder{
		upstreams: upstreams,
		client: &http.Client{
			Transport: tr,
			// A 307 to a presigned S3 URL goes to the client as it is.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// parseUpstreams reads -proxy: manifest=URL,blob=URL,catalog=URL, each
// function once, each URL absolute (http or https) with no path beyond
// "/", no query and no fragment.
func parseUpstreams(spec string) (map[string]*url.URL, error) {
	ups := map[string]*url.URL{}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fn, raw, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("-proxy: %q is not FUNCTION=URL", part)
		}
		if !slices.Contains(functions, fn) {
			return nil, fmt.Errorf("-proxy: unknown function %q (want %s)", fn, strings.Join(functions, ", "))
		}
		if _, dup := ups[fn]; dup {
			return nil, fmt.Errorf("-proxy: %s given twice", fn)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("-proxy: %s: %w", fn, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("-proxy: %s: %q is not a Function URL (http[s]://HOST[:PORT]/)", fn, raw)
		}
		ups[fn] = &url.URL{Scheme: u.Scheme, Host: u.Host}
	}
	for _, fn := range functions {
		if ups[fn] == nil {
			return nil, fmt.Errorf("-proxy: no URL for %s (want manifest=URL,blob=URL,catalog=URL)", fn)
		}
	}
	return ups, nil
}

// forward sends the request to fn's Function URL and copies the answer
// back. body is the whole request body, already read (and checked against
// the payload limit).
func (f *front) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, fn, rawPath string, body []byte) (status, bytesOut int, err error) {
	base := f.fwd.upstreams[fn]
	target := base.Scheme + "://" + base.Host + rawPath
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, bytes.NewReader(body))
	if err != nil {
		return plainError(w, http.StatusBadRequest, "the request cannot be forwarded"), 0, err
	}
	out.Header = originHeaders(r, f.originSecret)
	out.Host = base.Host
	out.ContentLength = int64(len(body))

	resp, err := f.fwd.client.Do(out)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// CloudFront's answer when the origin does not reply in time.
		return plainError(w, http.StatusGatewayTimeout, "the function did not answer in time"), 0, err
	case err != nil:
		return plainError(w, http.StatusBadGateway, "the function could not be reached"), 0, err
	}
	defer resp.Body.Close()

	wh := w.Header()
	for k, vs := range resp.Header {
		if hopHeaders[k] {
			continue
		}
		wh[k] = append([]string(nil), vs...)
	}
	if wh.Get("Content-Type") == "" {
		// net/http would sniff one; the function set none, so send none.
		wh["Content-Type"] = nil
	}
	w.WriteHeader(resp.StatusCode)
	n, err := io.Copy(w, resp.Body)
	return resp.StatusCode, int(n), err
}

// originHeaders are the headers of the origin request CloudFront would
// send for r: every viewer header but Host and the hop-by-hop ones, plus
// what the distribution adds or replaces.
func originHeaders(r *http.Request, originSecret string) http.Header {
	h := http.Header{}
	dropped := map[string]bool{}
	for _, v := range r.Header.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			dropped[http.CanonicalHeaderKey(strings.TrimSpace(name))] = true
		}
	}
	for k, vs := range r.Header {
		if hopHeaders[k] || dropped[k] || k == "Host" {
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	viewerIP, viewerPort, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		viewerIP, viewerPort = r.RemoteAddr, "0"
	}
	if prior := r.Header.Values("X-Forwarded-For"); len(prior) > 0 {
		h.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+viewerIP)
	} else {
		h.Set("X-Forwarded-For", viewerIP)
	}
	// The stack's viewer-request CloudFront Function: the viewer's Host,
	// never the client's own X-Forwarded-Host.
	h.Set("X-Forwarded-Host", r.Host)
	// And the viewer's address, never the client's own.
	h.Set(deploy.ViewerIPHeader, viewerIP)
	// CloudFront drops a viewer's X-Forwarded-Proto; the Function URL sets
	// its own (https in AWS; LocalStack's says http).
	h.Del("X-Forwarded-Proto")
	h.Set("Via", "2.0 lambdafront.cloudfront.net (CloudFront)")
	h.Set("X-Amz-Cf-Id", randomID(20))
	h.Set("Cloudfront-Viewer-Address", net.JoinHostPort(viewerIP, viewerPort))
	h.Set("Cloudfront-Forwarded-Proto", "http")
	h.Set(deploy.OriginSecretHeader, originSecret)
	if _, ok := h["User-Agent"]; !ok {
		// Send none rather than Go's own.
		h["User-Agent"] = []string{""}
	}
	h.Del("Content-Length")
	return h
}
