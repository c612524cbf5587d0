package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// maxPayload is Lambda's synchronous invocation limit, request and
// response: 6 MB, counted as 6 MiB.
const maxPayload = 6 << 20

// tooLargeMessage is what Lambda answers a Function URL request whose
// event would exceed maxPayload.
var tooLargeMessage = fmt.Sprintf(`{"Message":"Request must be smaller than %d bytes for the InvokeFunction operation"}`, maxPayload)

// invoker runs one invocation of a function.
type invoker interface {
	invoke(ctx context.Context, fn string, payload []byte) (status int, body []byte, in *instance, err error)
}

// front is the local stand-in for CloudFront plus the three Function URLs:
// it routes like the distribution (its viewer-request function selects the
// origin of the path's route group), builds the event a
// Function URL would, and turns the function's answer back into HTTP.
// With fwd set (proxy mode, proxy.go) it forwards each request to the
// function's deployed Function URL instead of invoking an emulator.
type front struct {
	inv          invoker
	fwd          *forwarder
	ingest       http.Handler // the ingest service's origin (ingest.go); nil: none
	originSecret string
	log          *slog.Logger
	now          func() time.Time
}

// hopHeaders are not forwarded by CloudFront to an origin (connection
// management and framing; the event holds the whole body).
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Expect": true, "Proxy-Authorization": true,
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := f.now()
	rawPath, _, _ := strings.Cut(r.RequestURI, "?")
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.IsAbs() {
		rawPath = u.EscapedPath()
	}
	d := viewerRequest(rawPath, r.ContentLength, f.ingest != nil)
	fn, byBehavior := d.origin, behaviorOrigin(rawPath, f.ingest != nil)
	attrs := []any{"fn", fn, "method", r.Method, "path", rawPath}
	if byBehavior != fn {
		// The viewer-request function overrode the behaviour's origin: a
		// repository name with a route keyword as a component.
		attrs = append(attrs, "behavior_fn", byBehavior)
	}
	var (
		status, bytesIn, bytesOut int
		inst                      *instance
		err                       error
	)
	switch {
	case d.refuse:
		// The viewer-request function answers itself: no function could
		// take the body (CloudFront has not read it).
		status = tooLarge(w)
		drainAfterAnswer(w, r)
		err = fmt.Errorf("Content-Length %d over the functions' cap of %d: refused at the front door", r.ContentLength, deploy.LambdaMaxBody)
	case fn == deploy.Ingest:
		rec := &recorder{ResponseWriter: w}
		f.ingest.ServeHTTP(rec, r)
		status, bytesOut = rec.status, rec.n
		bytesIn = int(max(r.ContentLength, 0))
	default:
		status, inst, bytesIn, bytesOut, err = f.serve(w, r, fn, rawPath)
	}
	attrs = append(attrs, "status", status, "bytes_in", bytesIn, "bytes_out", bytesOut, "dur_ms", f.now().Sub(start).Milliseconds())
	if inst != nil {
		attrs = append(attrs, "instance", inst.String())
	}
	if f.fwd != nil && fn != deploy.Ingest && !d.refuse {
		attrs = append(attrs, "upstream", f.fwd.upstreams[fn].Host)
	}
	if err != nil {
		f.log.Warn("request", append(attrs, "error", err.Error())...)
		return
	}
	f.log.Info("request", attrs...)
}

// serve answers one request and reports what happened, for the log line.
func (f *front) serve(w http.ResponseWriter, r *http.Request, fn, rawPath string) (status int, inst *instance, bytesIn, bytesOut int, err error) {
	// Anything above the payload limit can't fit the event: read one byte
	// more than that and no further.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		return plainError(w, http.StatusBadRequest, "could not read the request body"), nil, len(body), 0, err
	}
	bytesIn = len(body)
	ev := f.event(r, fn, rawPath, body)
	payload, err := json.Marshal(ev)
	if err != nil {
		return plainError(w, http.StatusInternalServerError, "could not build the event"), nil, bytesIn, 0, err
	}
	if len(body) > maxPayload || len(payload) > maxPayload {
		return writeRaw(w, http.StatusRequestEntityTooLarge, tooLargeMessage), nil, bytesIn, 0,
			fmt.Errorf("event of %d bytes (body %d) over Lambda's %d", len(payload), len(body), maxPayload)
	}
	ctx, cancel := context.WithTimeout(r.Context(), fnSpecs[fn].readTimeout)
	defer cancel()
	if f.fwd != nil {
		status, bytesOut, err = f.forward(ctx, w, r, fn, rawPath, body)
		return status, nil, bytesIn, bytesOut, err
	}
	st, out, inst, err := f.inv.invoke(ctx, fn, payload)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// CloudFront's answer when the origin does not reply in time.
		return plainError(w, http.StatusGatewayTimeout, "the function did not answer in time"), inst, bytesIn, 0, err
	case err != nil:
		return plainError(w, http.StatusBadGateway, "the function could not be invoked"), inst, bytesIn, 0, err
	case st != http.StatusOK:
		// The function failed (crash, timeout, returned error): a Function
		// URL answers 502 without the function's detail.
		return writeRaw(w, http.StatusBadGateway, `{"Message":"Internal Server Error"}`), inst, bytesIn, 0,
			fmt.Errorf("emulator answered %d: %.300s", st, out)
	}
	status, bytesOut, err = writeResponse(w, r.Method, out)
	return status, inst, bytesIn, bytesOut, err
}

// event builds the Function URL event for r as the real service would
// with CloudFront in front (managed origin request policy
// AllViewerExceptHostHeader, the origin secret as a custom origin header).
func (f *front) event(r *http.Request, fn, rawPath string, body []byte) *events.LambdaFunctionURLRequest {
	now := f.now()
	domain := fn + "-function.lambda-url.us-east-1.on.aws"
	viewerIP, viewerPort, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		viewerIP, viewerPort = r.RemoteAddr, "0"
	}
	h := map[string]string{}
	var cookies []string
	for k, vs := range r.Header {
		switch {
		case hopHeaders[k]:
			continue
		case k == "Cookie":
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		h[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	// What CloudFront and the Function URL add or replace. Host names the
	// Function URL (the origin request policy forwards every viewer header
	// but Host); the stack's viewer-request CloudFront Function puts the
	// viewer's Host in X-Forwarded-Host and the viewer's address in
	// X-Skiff-Viewer-Ip, replacing the client's. The
	// Function URL sets X-Forwarded-Proto, which is https in AWS (viewer
	// HTTP is redirected to HTTPS); this front door speaks plain HTTP, so
	// it says http, and a realm derived from the request names it.
	h["host"] = domain
	if xff := h["x-forwarded-for"]; xff != "" {
		h["x-forwarded-for"] = xff + ", " + viewerIP
	} else {
		h["x-forwarded-for"] = viewerIP
	}
	h["x-forwarded-host"] = r.Host
	// The viewer-request function's client address, replacing a client's.
	h[strings.ToLower(deploy.ViewerIPHeader)] = viewerIP
	h["x-forwarded-proto"] = "http"
	h["x-forwarded-port"] = portOf(r.Host)
	h["via"] = "2.0 lambdafront.cloudfront.net (CloudFront)"
	h["x-amz-cf-id"] = randomID(20)
	h["x-amzn-trace-id"] = fmt.Sprintf("Root=1-%08x-%s", now.Unix(), randomID(12))
	h["cloudfront-viewer-address"] = net.JoinHostPort(viewerIP, viewerPort)
	h["cloudfront-forwarded-proto"] = "http"
	h[strings.ToLower(deploy.OriginSecretHeader)] = f.originSecret
	delete(h, "content-length")
	if len(body) > 0 || r.Header.Get("Content-Length") != "" {
		h["content-length"] = strconv.Itoa(len(body))
	}
	ev := &events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        rawPath,
		RawQueryString: r.URL.RawQuery,
		Cookies:        cookies,
		Headers:        h,
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "anonymous",
			RequestID:    randomID(16),
			APIID:        fn + "-function",
			DomainName:   domain,
			DomainPrefix: fn + "-function",
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: r.Method,
				Path:   rawPath,
				// Lambda's peer is CloudFront, here the front door itself.
				Protocol:  "HTTP/1.1",
				SourceIP:  "127.0.0.1",
				UserAgent: r.Header.Get("User-Agent"),
			},
		},
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type")) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// writeResponse turns the function's answer into the HTTP response, as a
// Function URL does.
func writeResponse(w http.ResponseWriter, method string, out []byte) (status, n int, err error) {
	var probe struct {
		StatusCode   *int   `json:"statusCode"`
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || probe.StatusCode == nil {
		if probe.ErrorType != "" || probe.ErrorMessage != "" {
			return writeRaw(w, http.StatusBadGateway, `{"Message":"Internal Server Error"}`), 0,
				fmt.Errorf("the function failed: %s: %s", probe.ErrorType, probe.ErrorMessage)
		}
		// A Function URL sends any other answer as a JSON body with 200.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		n, err := w.Write(out)
		return http.StatusOK, n, err
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return writeRaw(w, http.StatusBadGateway, `{"Message":"Internal Server Error"}`), 0, fmt.Errorf("bad response event: %w", err)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return writeRaw(w, http.StatusBadGateway, `{"Message":"Internal Server Error"}`), 0, fmt.Errorf("response body: %w", err)
		}
	}
	wh := w.Header()
	for k, v := range resp.Headers {
		wh.Set(k, v)
	}
	for _, c := range resp.Cookies {
		wh.Add("Set-Cookie", c)
	}
	if method != http.MethodHead {
		// The length of what is sent; for HEAD the function's own
		// Content-Length stands (the size of what GET would send).
		wh.Del("Content-Length")
		if len(body) > 0 {
			wh.Set("Content-Length", strconv.Itoa(len(body)))
		}
	}
	if wh.Get("Content-Type") == "" {
		// net/http would sniff one; the function set none, so send none.
		wh["Content-Type"] = nil
	}
	status = resp.StatusCode
	w.WriteHeader(status)
	if method == http.MethodHead {
		return status, 0, nil
	}
	n, err = w.Write(body)
	return status, n, err
}

// isText reports whether a request body of this type travels in the event
// as text rather than base64: text, and JSON in any of its media types.
func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		mt == "application/x-www-form-urlencoded"
}

// tooLarge answers as the viewer-request function does a request bound
// for a function whose Content-Length is over the functions' cap.
func tooLarge(w http.ResponseWriter) int {
	var b bytes.Buffer
	tooLargeEnvelope(&b)
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	w.Header().Set("Connection", "close")
	return writeRaw(w, http.StatusRequestEntityTooLarge, b.String())
}

// drainAfterAnswer reads what the client keeps sending after an early
// answer, for a moment, before the connection closes: closing it with
// unread data makes the kernel reset it, and a client still writing its
// body (skopeo) then reports "connection reset by peer" instead of the
// answer. A client that reads the answer stops sending; one that doesn't
// is cut after drainFor or drainMax bytes.
func drainAfterAnswer(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if rc.EnableFullDuplex() != nil || rc.Flush() != nil {
		return
	}
	_ = rc.SetReadDeadline(time.Now().Add(drainFor))
	_, _ = io.CopyN(io.Discard, r.Body, drainMax)
}

// How long and how much drainAfterAnswer reads.
const (
	drainFor = 2 * time.Second
	drainMax = 64 << 20
)

// tooLargeEnvelope writes the body of that answer: the registry's
// SIZE_INVALID error with deploy.TooLargeAdvice.
func tooLargeEnvelope(w io.Writer) {
	_, _ = w.Write(oci.Envelope(oci.Errorf(oci.CodeSizeInvalid, "%s", deploy.TooLargeAdvice(deploy.LambdaMaxBody))))
}

// plainError answers with the front door's own error (not the registry's
// envelope: CloudFront and Lambda answer in their own words).
func plainError(w http.ResponseWriter, status int, msg string) int {
	b, _ := json.Marshal(map[string]string{"Message": msg})
	return writeRaw(w, status, string(b))
}

func writeRaw(w http.ResponseWriter, status int, body string) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
	return status
}

func portOf(hostport string) string {
	if _, p, err := net.SplitHostPort(hostport); err == nil {
		return p
	}
	return "80"
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
