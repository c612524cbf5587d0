package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/directapi"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// startUpload answers POST /v2/<name>/blobs/uploads/: a cross-repository
// mount (?mount=&from=), a monolithic upload (?digest= with the body), or a
// new session (202 with its Location).
func (a *API) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	q := r.URL.Query()
	if q.Has(directapi.Param) {
		return a.startDirect(w, r, rt, q.Get(directapi.Param))
	}
	if m := q.Get("mount"); m != "" {
		d, err := oci.ParseDigest(m)
		if err != nil {
			return err
		}
		if a.mayMount(r, q.Get("from")) {
			b, ok, err := a.reg.Mount(r.Context(), rt.repo, q.Get("from"), d)
			if err != nil {
				return err
			}
			if ok {
				blobCreated(w, rt.repo, b)
				return nil
			}
		}
	} else if ds := q.Get("digest"); ds != "" {
		d, err := oci.ParseDigest(ds)
		if err != nil {
			return err
		}
		if err := a.limitBody(w, r); err != nil {
			return err
		}
		if r.ContentLength >= 0 {
			b, err := a.reg.PutBlob(r.Context(), rt.repo, d, r.ContentLength, r.Body)
			if err != nil {
				return err
			}
			blobCreated(w, rt.repo, b)
			return nil
		}
		// Unknown length: stream through a session, in parts, hashed with
		// the digest's algorithm.
		u, err := a.reg.StartUploadFor(r.Context(), rt.repo, d.Algorithm())
		if err != nil {
			return err
		}
		b, err := a.reg.CommitUpload(r.Context(), rt.repo, u.ID, d, -1, -1, r.Body)
		if err != nil {
			return err
		}
		blobCreated(w, rt.repo, b)
		return nil
	}
	start := a.reg.StartUpload
	if alg := q.Get("digest-algorithm"); alg != "" {
		// distribution-spec end-4c: the algorithm the client will commit
		// with, when it is not sha256.
		start = func(ctx context.Context, repo string) (storage.Upload, error) {
			return a.reg.StartUploadFor(ctx, repo, digest.Algorithm(alg))
		}
	}
	u, err := start(r.Context(), rt.repo)
	if err != nil {
		return err
	}
	setRange(w, rt.repo, u.ID, 0)
	w.Header().Set("OCI-Chunk-Min-Length", strconv.FormatInt(a.chunkMin(), 10))
	if a.opts.maxBody > 0 {
		// Not in the spec (a proposal, distribution-spec issue 485), but a
		// client that knows it can size its chunks under the body cap
		// instead of learning it from a 413, as Cloudflare's registry does.
		w.Header().Set("OCI-Chunk-Max-Length", strconv.FormatInt(a.opts.maxBody, 10))
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// chunkMin is the chunk size advertised to clients: a whole part, so
// chunks need no buffering, unless the body cap is small (Lambda). Then a
// third of the cap: clients size blobs and chunks in multiples of it (the
// conformance suite sends blobs of three minimum chunks in one request),
// and every request must stay under the cap. The registry accepts any
// chunk size; smaller chunks only cost a buffered tail.
func (a *API) chunkMin() int64 {
	n := a.reg.ChunkMinLength()
	if a.opts.maxBody > 0 && a.opts.maxBody < 3*n {
		n = min(n, a.opts.maxBody/3)
	}
	return n
}

func blobCreated(w http.ResponseWriter, repo string, b storage.Blob) {
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/blobs/"+b.Digest.String())
	h.Set("Docker-Content-Digest", b.Digest.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// uploadStatus answers GET on a session: 204 with its Range.
func (a *API) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	u, err := a.reg.UploadStatus(r.Context(), rt.repo, rt.arg)
	if err != nil {
		return err
	}
	setRange(w, rt.repo, u.ID, u.Offset)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// chunkStart reads the Content-Range of a chunk: its start, or -1 without
// one. With a declared Content-Length the two must agree.
func chunkStart(r *http.Request) (int64, error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return -1, nil
	}
	start, end, err := parseContentRange(cr)
	if err != nil {
		return 0, oci.Errorf(oci.CodeBlobUploadInvalid, "%s", err.Error()).WithStatus(http.StatusRequestedRangeNotSatisfiable)
	}
	if r.ContentLength >= 0 && r.ContentLength != end-start+1 {
		return 0, oci.Errorf(oci.CodeBlobUploadInvalid, "Content-Range %s announces %d bytes but Content-Length is %d", cr, end-start+1, r.ContentLength).WithStatus(http.StatusRequestedRangeNotSatisfiable)
	}
	return start, nil
}

// patchUpload answers PATCH on a session: a chunk (with Content-Range) or
// a stream (without), 202 with the new Range.
func (a *API) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	start, err := chunkStart(r)
	if err != nil {
		return err
	}
	if err := a.limitBody(w, r); err != nil {
		return err
	}
	u, err := a.reg.WriteUpload(r.Context(), rt.repo, rt.arg, start, r.Body)
	if err != nil {
		return err
	}
	setRange(w, rt.repo, u.ID, u.Offset)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// putUpload answers PUT on a session (?digest=, optionally with the last
// chunk): 201 with the blob's Location and digest.
func (a *API) putUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	if step := r.URL.Query().Get(directapi.Param); step != "" {
		return a.putDirect(w, r, rt, step)
	}
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		return oci.Errorf(oci.CodeDigestInvalid, "the digest query parameter is required to finish an upload")
	}
	d, err := oci.ParseDigest(ds)
	if err != nil {
		return err
	}
	start, err := chunkStart(r)
	if err != nil {
		return err
	}
	if err := a.limitBody(w, r); err != nil {
		return err
	}
	b, err := a.reg.CommitUpload(r.Context(), rt.repo, rt.arg, d, start, r.ContentLength, r.Body)
	if err != nil {
		return err
	}
	blobCreated(w, rt.repo, b)
	return nil
}

// cancelUpload answers DELETE on a session: 204.
func (a *API) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := a.reg.CancelUpload(r.Context(), rt.repo, rt.arg); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
