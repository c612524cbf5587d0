package oci

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrorCode is an error code from the distribution-spec, as sent on the wire
// in the "code" field of the JSON error envelope.
type ErrorCode string

// The distribution-spec error codes, plus UNKNOWN for internal errors.
// The comment on each gives the HTTP status that Status returns.
const (
	CodeBlobUnknown         ErrorCode = "BLOB_UNKNOWN"          // 404
	CodeBlobUploadInvalid   ErrorCode = "BLOB_UPLOAD_INVALID"   // 400 (callers override to 416 for range errors)
	CodeBlobUploadUnknown   ErrorCode = "BLOB_UPLOAD_UNKNOWN"   // 404
	CodeDigestInvalid       ErrorCode = "DIGEST_INVALID"        // 400
	CodeManifestBlobUnknown ErrorCode = "MANIFEST_BLOB_UNKNOWN" // 400
	CodeManifestInvalid     ErrorCode = "MANIFEST_INVALID"      // 400
	CodeManifestUnknown     ErrorCode = "MANIFEST_UNKNOWN"      // 404
	CodeNameInvalid         ErrorCode = "NAME_INVALID"          // 400
	CodeNameUnknown         ErrorCode = "NAME_UNKNOWN"          // 404
	CodeSizeInvalid         ErrorCode = "SIZE_INVALID"          // 400
	CodeUnauthorized        ErrorCode = "UNAUTHORIZED"          // 401
	CodeDenied              ErrorCode = "DENIED"                // 403
	CodeUnsupported         ErrorCode = "UNSUPPORTED"           // 405
	CodeTooManyRequests     ErrorCode = "TOOMANYREQUESTS"       // 429
	CodeUnknown             ErrorCode = "UNKNOWN"               // 500, generic message, for internal errors
)

// codeInfo is one row of the static error table.
type codeInfo struct {
	status  int
	message string
}

// codes is the whole error table. It is static data rather than a runtime
// registry (as in distribution's errcode) so it needs no locking, no init
// order and cannot panic. Messages are the spec's short descriptions.
var codes = map[ErrorCode]codeInfo{
	CodeBlobUnknown:         {http.StatusNotFound, "blob unknown to registry"},
	CodeBlobUploadInvalid:   {http.StatusBadRequest, "blob upload invalid"},
	CodeBlobUploadUnknown:   {http.StatusNotFound, "blob upload unknown to registry"},
	CodeDigestInvalid:       {http.StatusBadRequest, "provided digest did not match uploaded content"},
	CodeManifestBlobUnknown: {http.StatusBadRequest, "manifest references a manifest or blob unknown to registry"},
	CodeManifestInvalid:     {http.StatusBadRequest, "manifest invalid"},
	CodeManifestUnknown:     {http.StatusNotFound, "manifest unknown to registry"},
	CodeNameInvalid:         {http.StatusBadRequest, "invalid repository name"},
	CodeNameUnknown:         {http.StatusNotFound, "repository name not known to registry"},
	CodeSizeInvalid:         {http.StatusBadRequest, "provided length did not match content length"},
	CodeUnauthorized:        {http.StatusUnauthorized, "authentication required"},
	CodeDenied:              {http.StatusForbidden, "requested access to the resource is denied"},
	CodeUnsupported:         {http.StatusMethodNotAllowed, "the operation is unsupported"},
	CodeTooManyRequests:     {http.StatusTooManyRequests, "too many requests"},
	CodeUnknown:             {http.StatusInternalServerError, "internal server error"},
}

// Codes returns every known ErrorCode, in the order of the spec's table
// followed by CodeUnknown. Tests and documentation walk it.
func Codes() []ErrorCode {
	return []ErrorCode{
		CodeBlobUnknown, CodeBlobUploadInvalid, CodeBlobUploadUnknown,
		CodeDigestInvalid, CodeManifestBlobUnknown, CodeManifestInvalid,
		CodeManifestUnknown, CodeNameInvalid, CodeNameUnknown, CodeSizeInvalid,
		CodeUnauthorized, CodeDenied, CodeUnsupported, CodeTooManyRequests,
		CodeUnknown,
	}
}

// Status returns the HTTP status the spec pairs with c. A code missing from
// the table (for example one read from another registry) maps to 500.
func (c ErrorCode) Status() int {
	if info, ok := codes[c]; ok {
		return info.status
	}
	return http.StatusInternalServerError
}

// Message returns the spec's short description of c, such as
// "blob unknown to registry". A code missing from the table gets the
// generic description of CodeUnknown.
func (c ErrorCode) Message() string {
	if info, ok := codes[c]; ok {
		return info.message
	}
	return codes[CodeUnknown].message
}

// Error is one client-facing registry error. Code, Message and Detail are
// sent to the client; Err is kept for logs only.
type Error struct {
	Code    ErrorCode
	Message string // what was wrong, for the client
	Detail  any    // optional JSON detail
	Status  int    // 0 means Code.Status()
	Err     error  // wrapped cause, never sent to clients
}

// Errorf returns an *Error with code and Message formatted as by fmt.Errorf.
// If format wraps an error with %w, that error becomes Err so errors.Is and
// errors.As see it. Its text also becomes part of Message, which clients see:
// wrap only errors whose text is safe to show, and set Err directly otherwise.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	// fmt.Errorf rather than fmt.Sprintf so that %w renders as the cause's
	// text instead of "%!w(...)".
	wrapped := fmt.Errorf(format, args...)
	e := &Error{Code: code, Message: wrapped.Error()}
	e.Err = errors.Unwrap(wrapped)
	if multi, ok := wrapped.(interface{ Unwrap() []error }); ok {
		// Several %w verbs: errors.Unwrap returns nil, so keep them all.
		e.Err = errors.Join(multi.Unwrap()...)
	}
	return e
}

// Error returns "CODE: message", followed by ": cause" when Err is set and
// its text is not already part of the message (as it is after Errorf with %w).
// It is meant for logs: it includes the cause, which clients never see.
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	msg := e.Message
	if msg == "" {
		msg = e.Code.Message()
	}
	s := string(e.Code) + ": " + msg
	if e.Err != nil && !mentions(msg, e.Err) {
		s += ": " + e.Err.Error()
	}
	return s
}

// mentions reports whether msg already contains the text of err, or of each
// error err joins, so Error does not repeat a cause that Errorf's %w put
// into the message.
func mentions(msg string, err error) bool {
	if strings.Contains(msg, err.Error()) {
		return true
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return false
	}
	for _, part := range joined.Unwrap() {
		if part != nil && !strings.Contains(msg, part.Error()) {
			return false
		}
	}
	return true
}

// Unwrap returns the wrapped cause, if any.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// HTTPStatus returns Status when set, else the status of Code.
func (e *Error) HTTPStatus() int {
	if e == nil {
		return http.StatusInternalServerError
	}
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.Status()
}

// WithStatus returns a copy of e answered with status, for the few places the
// spec pairs a code with a different status (416 for a bad upload range, 413
// for an oversize manifest). e is not modified, so shared errors stay intact.
func (e *Error) WithStatus(status int) *Error {
	c := e.copy()
	c.Status = status
	return &c
}

// WithDetail returns a copy of e carrying detail, which is marshalled as the
// "detail" member of the JSON envelope. e is not modified.
func (e *Error) WithDetail(detail any) *Error {
	c := e.copy()
	c.Detail = detail
	return &c
}

// copy returns a shallow copy of e; a nil e copies as an UNKNOWN error so the
// With* helpers never panic on a caller's nil.
func (e *Error) copy() Error {
	if e == nil {
		return Error{Code: CodeUnknown}
	}
	return *e
}

// Errors is several client errors answered together (e.g. one
// MANIFEST_BLOB_UNKNOWN per missing reference).
type Errors []*Error

// Error joins the errors' texts with "; ".
func (es Errors) Error() string {
	if len(es) == 0 {
		return "no errors"
	}
	parts := make([]string, 0, len(es))
	for _, e := range es {
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the non-nil errors, so errors.Is and errors.As look into each.
func (es Errors) Unwrap() []error {
	out := make([]error, 0, len(es))
	for _, e := range es {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// HTTPStatus returns the status of the first error, or 500 when es is empty:
// an empty list means a caller bug, not a client mistake.
func (es Errors) HTTPStatus() int {
	if len(es) == 0 {
		return http.StatusInternalServerError
	}
	return es[0].HTTPStatus()
}
