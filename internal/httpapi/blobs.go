package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// redirectTTL is how long a presigned blob URL lives: long enough for a
// slow pull of a large layer to start, short for a leaked URL.
const redirectTTL = 15 * time.Minute

// getBlob answers GET and HEAD /v2/<name>/blobs/<digest>, with a single
// byte range if asked. When the blob store can presign, a GET of a large
// blob redirects (307) so its bytes do not flow through this server; the
// redirect cannot carry Docker-Content-Digest to the final response.
func (a *API) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := oci.ParseDigest(rt.arg)
	if err != nil {
		return err
	}
	stat := a.reg.StatBlob
	if r.Method == http.MethodHead {
		// A client asking whether to push it: keep it for the push.
		stat = a.reg.HeadBlob
	}
	b, err := stat(r.Context(), rt.repo, d)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", `"`+d.String()+`"`)
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if a.opts.redirectMin >= 0 && b.Size >= a.opts.redirectMin {
		if u, err := a.reg.BlobURL(r.Context(), b, redirectTTL); err != nil {
			return err
		} else if u != "" {
			h.Set("Location", u)
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Length", "0")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
	}
	offset, length, status := int64(0), b.Size, http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		var ok bool
		offset, length, ok = parseByteRange(rg, b.Size)
		if !ok {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", b.Size))
			return oci.Errorf(oci.CodeBlobUnknown, "range %q is outside blob %s of %d bytes", rg, d, b.Size).WithStatus(http.StatusRequestedRangeNotSatisfiable)
		}
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", offset, offset+length-1, b.Size))
	}
	body, err := a.reg.OpenBlob(r.Context(), b, offset, length)
	if err != nil {
		return err
	}
	defer body.Close()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if _, err := io.Copy(w, body); err != nil {
		requestInfo(r.Context()).err = "write blob body: " + err.Error()
	}
	return nil
}

// deleteBlob answers DELETE /v2/<name>/blobs/<digest>.
func (a *API) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := oci.ParseDigest(rt.arg)
	if err != nil {
		return err
	}
	if err := a.reg.DeleteBlob(r.Context(), rt.repo, d); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
