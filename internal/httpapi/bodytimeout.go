package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// bodyProgress is what a request body must deliver per body timeout to
// keep going: a client that sends less (a byte every few seconds, as a
// slowloris does) holds a connection and a goroutine for nothing. A real
// upload sends far more; the slowest link a registry client uses does too.
const bodyProgress = 1 << 10

// WithBodyTimeout cuts a request whose body delivers less than 1 KiB in d
// (default 0: no limit): it gets 408 and its connection is closed. Fast
// large uploads are not limited, however long they take. It needs a
// server whose connections take read deadlines (net/http's do; the Lambda
// adapter has no connection and is left alone).
func WithBodyTimeout(d time.Duration) Option { return func(o *options) { o.bodyTimeout = d } }

// limitSlowBodies applies the body timeout to r's body.
func (a *API) limitSlowBodies(next http.Handler) http.Handler {
	if a.opts.bodyTimeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		ctl := http.NewResponseController(w)
		if err := ctl.SetReadDeadline(time.Now().Add(a.opts.bodyTimeout)); err != nil {
			next.ServeHTTP(w, r) // no connection to set a deadline on
			return
		}
		// Whatever the handler read or left, no deadline outlives it.
		defer ctl.SetReadDeadline(time.Time{})
		r.Body = &slowBody{ReadCloser: r.Body, ctl: ctl, w: w, timeout: a.opts.bodyTimeout}
		next.ServeHTTP(w, r)
	})
}

// slowBody extends the connection's read deadline each time the body
// delivered bodyProgress more bytes, and clears it at the end of the body:
// the server's own read after the body (it watches for the client going
// away) must not time out while a handler works on a long commit.
type slowBody struct {
	io.ReadCloser
	ctl     *http.ResponseController
	w       http.ResponseWriter
	timeout time.Duration
	since   int
}

func (b *slowBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.since += n
	switch {
	case errors.Is(err, io.EOF):
		_ = b.ctl.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.w.Header().Set("Connection", "close")
		return n, oci.Errorf(oci.CodeSizeInvalid, "the request body sent less than %d bytes in %s; the registry stopped reading it", bodyProgress, b.timeout).
			WithStatus(http.StatusRequestTimeout)
	case b.since >= bodyProgress:
		b.since = 0
		_ = b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	}
	return n, err
}
