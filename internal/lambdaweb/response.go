package lambdaweb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// errTooLarge is what a write past the payload limit returns, so the
// handler stops producing bytes that cannot be sent.
var errTooLarge = errors.New("response body exceeds Lambda's payload limit")

// responseWriter buffers one response, as a BUFFERED Function URL does.
// Like net/http's, it takes a snapshot of the header at WriteHeader:
// later changes are not sent.
type responseWriter struct {
	header  http.Header // what the handler sees and changes
	sent    http.Header // the snapshot taken at WriteHeader
	status  int
	body    bytes.Buffer
	limit   int
	tooBig  bool
	written int64 // body bytes the handler wrote, kept or not
}

func newResponseWriter(limit int) *responseWriter {
	return &responseWriter{header: http.Header{}, limit: limit}
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		// Informational answers (100, 103) are not part of a Lambda
		// response; a second WriteHeader is ignored, as net/http does.
		return
	}
	w.status = code
	w.sent = w.header.Clone()
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.written += int64(len(p))
	if w.tooBig || w.body.Len()+len(p) > w.limit {
		w.tooBig = true
		w.body.Reset()
		return 0, errTooLarge
	}
	return w.body.Write(p)
}

// reset forgets everything written so far (a panic's answer replaces it).
func (w *responseWriter) reset() {
	w.header = http.Header{}
	w.sent = nil
	w.status = 0
	w.body.Reset()
	w.tooBig = false
	w.written = 0
}

// response turns what the handler wrote into the Function URL response, or
// fails when it would not fit in Lambda's payload limit.
func (w *responseWriter) response(method string) (events.LambdaFunctionURLResponse, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.tooBig {
		return events.LambdaFunctionURLResponse{}, fmt.Errorf("%w: the handler wrote %d body bytes, the limit is %d", errTooLarge, w.written, w.limit)
	}
	resp := events.LambdaFunctionURLResponse{StatusCode: w.status, Headers: make(map[string]string, len(w.sent))}
	size := 64 // the JSON around the fields
	for k, vs := range w.sent {
		if k == "Set-Cookie" {
			resp.Cookies = vs
			for _, c := range vs {
				size += len(c) + 3
			}
			continue
		}
		v := strings.Join(vs, ",")
		resp.Headers[k] = v
		size += len(k) + len(v) + 6
	}
	if b := w.body.Bytes(); len(b) > 0 && method != http.MethodHead {
		if isText(w.sent.Get("Content-Type")) && utf8.Valid(b) {
			resp.Body = string(b)
		} else {
			resp.Body = base64.StdEncoding.EncodeToString(b)
			resp.IsBase64Encoded = true
		}
	}
	size += len(resp.Body)
	if size > w.limit/2 {
		// Near the limit, JSON escaping matters: measure what the runtime
		// will send.
		if b, err := json.Marshal(resp); err == nil {
			size = len(b)
		}
	}
	if size > w.limit {
		return events.LambdaFunctionURLResponse{}, fmt.Errorf("%w: the response payload would be %d bytes, the limit is %d", errTooLarge, size, w.limit)
	}
	return resp, nil
}

// isText reports whether a body of this Content-Type may travel as a JSON
// string: text, and JSON in any of its media types (OCI manifests and
// indexes, the error envelope). Everything else, octet-stream included,
// is base64-encoded.
func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// errorResponse is an answer of the adapter itself, in the OCI error
// envelope. keep, when not nil, contributes its X-Request-Id.
func errorResponse(e *oci.Error, keep http.Header) events.LambdaFunctionURLResponse {
	body := oci.Envelope(e)
	h := map[string]string{
		"Content-Type":                    "application/json",
		"Content-Length":                  strconv.Itoa(len(body)),
		"Docker-Distribution-Api-Version": "registry/2.0",
	}
	if id := keep.Get("X-Request-Id"); id != "" {
		h["X-Request-Id"] = id
	}
	return events.LambdaFunctionURLResponse{StatusCode: e.HTTPStatus(), Headers: h, Body: string(body)}
}
