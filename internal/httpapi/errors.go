package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// writeError answers err with the spec's error envelope. Client errors
// carry their code; anything else is logged with the request id and
// answered 500 UNKNOWN with a generic message: internal text never reaches
// a client.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	info := requestInfo(r.Context())
	var (
		errs   oci.Errors
		one    *oci.Error
		rng    *registry.RangeError
		tooBig *http.MaxBytesError
	)
	switch {
	case errors.As(err, &errs) && len(errs) > 0:
	case errors.As(err, &tooBig):
		errs = oci.Errors{a.tooLarge(tooBig.Limit)}
	case errors.As(err, &one):
		errs = oci.Errors{one}
	case errors.Is(err, storage.ErrFull):
		info.err = "storage full: " + err.Error()
		a.logFull(r, err)
		errs = oci.Errors{oci.Errorf(oci.CodeUnknown,
			"the registry's storage is full: this request's data was not stored (what earlier requests stored is kept); retry once the operator has freed space").
			WithStatus(http.StatusInsufficientStorage)}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		errs = oci.Errors{oci.Errorf(oci.CodeUnknown, "request cancelled").WithStatus(499)}
	default:
		info.err = err.Error()
		errs = oci.Errors{oci.Errorf(oci.CodeUnknown, "internal error; quote request id %s to the operator", info.id)}
	}
	if errors.As(err, &rng) {
		setRange(w, rng.Upload.Repo, rng.Upload.ID, rng.Upload.Offset)
	}
	var ae *authError
	if errors.As(err, &ae) {
		w.Header().Set("WWW-Authenticate", ae.challenge)
	}
	var ra *retryAfter
	if errors.As(err, &ra) {
		w.Header().Set("Retry-After", strconv.Itoa(ra.secs))
	}
	if info.err == "" {
		info.err = errs.Error()
	}
	status := errs.HTTPStatus()
	if status == 499 {
		return
	}
	body := oci.Envelope(errs...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// fullLogEvery spaces the error lines of a full store: a full disk fails
// every write until someone frees space, and one line a minute says so.
const fullLogEvery = time.Minute

// logFull logs, at most once per fullLogEvery, that the store is full.
// Each request's own access line still names its error (at warn level).
func (a *API) logFull(r *http.Request, err error) {
	now := time.Now().UnixNano()
	last := a.fullLogged.Load()
	if now-last < int64(fullLogEvery) || !a.fullLogged.CompareAndSwap(last, now) {
		return
	}
	a.opts.log.ErrorContext(r.Context(), "the registry's storage is full: writes are refused with 507 until space is freed",
		"request_id", requestInfo(r.Context()).id, "error", err.Error())
}

// tooLarge explains the body limit and how to stay under it.
func (a *API) tooLarge(limit int64) *oci.Error {
	if a.opts.tooLargeMessage != "" {
		return oci.Errorf(oci.CodeSizeInvalid, "%s", a.opts.tooLargeMessage).WithStatus(http.StatusRequestEntityTooLarge)
	}
	return oci.Errorf(oci.CodeSizeInvalid,
		"request body exceeds this registry's limit of %d bytes; push large blobs in chunks of at most %d bytes "+
			"with PATCH and Content-Range (for example `regctl registry set HOST --blob-chunk %d --blob-max %d`, or a client that pushes in chunks)",
		limit, limit, limit, limit).WithStatus(http.StatusRequestEntityTooLarge)
}

// limitBody applies the configured request body cap: a declared
// Content-Length over it is refused before reading, an undeclared one
// fails with *http.MaxBytesError when it crosses the cap.
func (a *API) limitBody(w http.ResponseWriter, r *http.Request) error {
	if a.opts.maxBody <= 0 {
		return nil
	}
	if r.ContentLength > a.opts.maxBody {
		return a.tooLarge(a.opts.maxBody)
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.opts.maxBody)
	return nil
}

func setRange(w http.ResponseWriter, repo, id string, offset int64) {
	h := w.Header()
	h.Set("Location", uploadLocation(repo, id))
	h.Set("Range", fmt.Sprintf("0-%d", max(offset-1, 0)))
	h.Set("Docker-Upload-UUID", id)
}

func uploadLocation(repo, id string) string { return "/v2/" + repo + "/blobs/uploads/" + id }

var errPanic = errors.New("handler panicked")
