package lambdaweb

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/origin"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// MaxPayload is Lambda's limit on a synchronous invocation's response
// (and request) payload: 6 MB, counted as 6 MiB by the service.
const MaxPayload = 6 << 20

// HandlerFunc is what lambda.Start runs for a Function URL.
type HandlerFunc func(context.Context, *events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error)

type options struct {
	log        *slog.Logger
	origin     *origin.Secret
	maxPayload int
}

// Option configures Handler.
type Option func(*options)

// WithLogger sets the logger for the adapter's own lines: refused origin
// secrets, oversize responses, panics (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithOrigin refuses every request whose X-Skiff-Origin-Secret header is
// not one o accepts (default nil: no check). origin.FromConfig builds o
// from the configuration.
func WithOrigin(o *origin.Secret) Option { return func(opts *options) { opts.origin = o } }

// WithOriginSecret refuses every request whose X-Skiff-Origin-Secret
// header does not equal secret ("": no check).
func WithOriginSecret(secret string) Option {
	return func(o *options) {
		o.origin = nil
		if secret != "" {
			o.origin = origin.Fixed(secret)
		}
	}
}

// withMaxPayload lowers the response limit (tests).
func withMaxPayload(n int) Option { return func(o *options) { o.maxPayload = n } }

// Handler returns the Lambda handler that serves h for Function URL events.
// It never returns an error: every failure is an HTTP answer.
func Handler(h http.Handler, opts ...Option) HandlerFunc {
	o := options{log: slog.New(slog.DiscardHandler), maxPayload: MaxPayload}
	for _, opt := range opts {
		opt(&o)
	}
	a := &adapter{h: h, opts: o}
	return a.serve
}

type adapter struct {
	h    http.Handler
	opts options
}

func (a *adapter) serve(ctx context.Context, ev *events.LambdaFunctionURLRequest) (resp events.LambdaFunctionURLResponse, _ error) {
	defer func() {
		if v := recover(); v != nil {
			a.opts.log.ErrorContext(ctx, "panic in the Lambda adapter", "aws_request_id", awsRequestID(ctx),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp = errorResponse(oci.Errorf(oci.CodeUnknown, "internal error; quote Lambda request id %s to the operator", awsRequestID(ctx)), nil)
		}
	}()
	if ev == nil {
		return errorResponse(oci.Errorf(oci.CodeUnsupported, "empty Function URL event").WithStatus(http.StatusBadRequest), nil), nil
	}
	header := eventHeader(ev)
	// Removed whatever the outcome: the handler and its logs never see it.
	got := header.Get(deploy.OriginSecretHeader)
	header.Del(deploy.OriginSecretHeader)
	if a.opts.origin != nil {
		ok, refreshErr := a.opts.origin.Allows(ctx, got)
		if refreshErr != nil {
			a.opts.log.WarnContext(ctx, "could not re-read the origin secret; the known values still apply",
				"aws_request_id", awsRequestID(ctx), "error", refreshErr)
		}
		if !ok {
			a.opts.log.WarnContext(ctx, "request refused: origin secret missing or wrong", "aws_request_id", awsRequestID(ctx),
				"method", ev.RequestContext.HTTP.Method, "path", ev.RawPath, "source_ip", ev.RequestContext.HTTP.SourceIP, "secret_present", got != "")
			return errorResponse(oci.Errorf(oci.CodeDenied, "requests must come through the registry's front door"), nil), nil
		}
	}
	r, err := newRequest(ctx, ev, header)
	if err != nil {
		return errorResponse(oci.Errorf(oci.CodeUnsupported, "bad request: %v", err).WithStatus(http.StatusBadRequest), nil), nil
	}
	w := newResponseWriter(a.opts.maxPayload)
	a.serveHTTP(w, r)
	resp, err = w.response(r.Method)
	if err != nil {
		a.opts.log.ErrorContext(ctx, "response refused", "aws_request_id", awsRequestID(ctx), "method", r.Method,
			"path", ev.RawPath, "status", w.status, "request_id", w.header.Get("X-Request-Id"), "error", err)
		return errorResponse(oci.Errorf(oci.CodeUnknown, "the registry's answer does not fit in a Lambda response "+
			"(%d bytes at most); quote request id %s to the operator", a.opts.maxPayload, w.header.Get("X-Request-Id")).
			WithStatus(http.StatusBadGateway), w.header), nil
	}
	return resp, nil
}

// serveHTTP runs the handler; a panic it lets through (httpapi recovers
// its own, but not http.ErrAbortHandler) replaces whatever it wrote with
// a 500.
func (a *adapter) serveHTTP(w *responseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			a.opts.log.ErrorContext(r.Context(), "panic in the handler", "aws_request_id", awsRequestID(r.Context()),
				"method", r.Method, "path", r.URL.EscapedPath(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			w.reset()
			e := oci.Errorf(oci.CodeUnknown, "internal error; quote Lambda request id %s to the operator", awsRequestID(r.Context()))
			body := oci.Envelope(e)
			w.header.Set("Content-Type", "application/json")
			w.header.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(e.HTTPStatus())
			_, _ = w.Write(body)
		}
	}()
	a.h.ServeHTTP(w, r)
}

// eventHeader collects the event's headers under canonical names (a
// Function URL sends them lower-cased, multiple values comma-joined) and
// its cookies as one Cookie header, as a browser would have sent them.
func eventHeader(ev *events.LambdaFunctionURLRequest) http.Header {
	h := make(http.Header, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		h[ck] = append(h[ck], v)
	}
	if len(ev.Cookies) > 0 {
		cookies := strings.Join(ev.Cookies, "; ")
		if prev := h.Get("Cookie"); prev != "" {
			cookies = prev + "; " + cookies
		}
		h.Set("Cookie", cookies)
	}
	return h
}

// newRequest builds the server-side request the event describes.
func newRequest(ctx context.Context, ev *events.LambdaFunctionURLRequest, header http.Header) (*http.Request, error) {
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		return nil, errors.New("the event names no method")
	}
	path := ev.RawPath
	if path == "" {
		path = "/"
	}
	uri := path
	if ev.RawQueryString != "" {
		uri += "?" + ev.RawQueryString
	}
	// ParseRequestURI is what net/http's server applies to a request line:
	// Path is decoded, RawPath keeps escapes such as %2F, RawQuery is as sent.
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, fmt.Errorf("request target %q: %w", uri, err)
	}
	body, n, err := eventBody(ev)
	if err != nil {
		return nil, err
	}
	r, err := http.NewRequestWithContext(ctx, method, "http://lambda"+u.RequestURI(), nil)
	if err != nil {
		return nil, err
	}
	r.URL = u
	r.RequestURI = uri
	r.Host = header.Get("Host")
	if r.Host == "" {
		r.Host = ev.RequestContext.DomainName
	}
	header.Del("Host")
	// The event holds the whole body: its length is known, whatever
	// framing the client used.
	hadLength := header.Get("Content-Length") != ""
	header.Del("Transfer-Encoding")
	header.Del("Content-Length")
	if n > 0 || hadLength {
		header.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	r.Header = header
	r.ContentLength = n
	r.Body = body
	r.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	return r, nil
}

// eventBody returns a reader over the event's body and its decoded length.
// A base64 body is decoded while the handler reads it: nothing beyond the
// event's own string is held.
func eventBody(ev *events.LambdaFunctionURLRequest) (io.ReadCloser, int64, error) {
	if ev.Body == "" {
		return http.NoBody, 0, nil
	}
	if !ev.IsBase64Encoded {
		return io.NopCloser(strings.NewReader(ev.Body)), int64(len(ev.Body)), nil
	}
	n, err := decodedLen(ev.Body)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(base64.NewDecoder(base64.StdEncoding, strings.NewReader(ev.Body))), n, nil
}

// decodedLen is the exact length of standard, padded base64 s (Lambda's
// encoding), checked without decoding.
func decodedLen(s string) (int64, error) {
	if len(s)%4 != 0 {
		return 0, fmt.Errorf("the base64 body is %d characters long, not a multiple of 4", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' && i >= len(s)-2) {
			return 0, fmt.Errorf("the base64 body has an invalid character at offset %d", i)
		}
	}
	if len(s) >= 2 && s[len(s)-2] == '=' && s[len(s)-1] != '=' {
		return 0, errors.New("the base64 body is badly padded")
	}
	pad := int64(len(s) - len(strings.TrimRight(s, "=")))
	return int64(len(s))/4*3 - pad, nil
}

// awsRequestID is Lambda's id of the invocation, for log lines.
func awsRequestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}
