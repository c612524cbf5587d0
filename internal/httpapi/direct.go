package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/skiff-registry/skiff/internal/directapi"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// maxCompleteBody bounds a direct completion's body: a thousand parts
// with their ETags take well under it.
const maxCompleteBody = 256 << 10

// startDirect answers POST .../blobs/uploads/?skiff-direct=<size>.
func (a *API) startDirect(w http.ResponseWriter, r *http.Request, rt route, sizeParam string) error {
	size, err := strconv.ParseInt(sizeParam, 10, 64)
	if err != nil {
		return oci.Errorf(oci.CodeSizeInvalid, "%s=%q must be the blob's size in bytes", directapi.Param, sizeParam)
	}
	du, err := a.reg.StartDirectUpload(r.Context(), rt.repo, size)
	if err != nil {
		return err
	}
	out := directapi.Start{ID: du.Upload.ID, Location: uploadLocation(rt.repo, du.Upload.ID), Size: size, PartSize: du.PartSize, Expires: du.URLsExpire}
	for _, p := range du.Parts {
		out.Parts = append(out.Parts, directapi.Part{Number: p.Number, Size: p.Size, URL: p.URL})
	}
	setRange(w, rt.repo, du.Upload.ID, 0)
	writeJSON(w, r, http.StatusAccepted, "application/json", out)
	return nil
}

// putDirect answers PUT on a direct session: ?skiff-direct=complete with
// the parts, or ?skiff-direct=verify; 201 with the blob once verified, else
// 202 with how far the hash got.
func (a *API) putDirect(w http.ResponseWriter, r *http.Request, rt route, step string) error {
	var (
		b   storage.Blob
		st  registry.DirectStatus
		err error
	)
	switch step {
	case directapi.Complete:
		d, derr := oci.ParseDigest(r.URL.Query().Get("digest"))
		if derr != nil {
			return derr
		}
		var body directapi.CompleteBody
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCompleteBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return oci.Errorf(oci.CodeBlobUploadInvalid, "the completion must be JSON {\"parts\":[{\"number\":1,\"etag\":\"...\"},...]} under %d bytes: %v", maxCompleteBody, err)
		}
		parts := make([]storage.Part, len(body.Parts))
		for i, p := range body.Parts {
			parts[i] = storage.Part{Number: p.Number, ETag: p.ETag}
		}
		b, st, err = a.reg.CompleteDirectUpload(r.Context(), rt.repo, rt.arg, d, parts)
	case directapi.Verify:
		b, st, err = a.reg.VerifyDirectUpload(r.Context(), rt.repo, rt.arg)
	default:
		return oci.Errorf(oci.CodeUnsupported, "%s=%q: want %s or %s", directapi.Param, step, directapi.Complete, directapi.Verify).WithStatus(http.StatusBadRequest)
	}
	if err != nil {
		return err
	}
	if b.Digest != "" {
		blobCreated(w, rt.repo, b)
		return nil
	}
	w.Header().Set("Location", uploadLocation(rt.repo, rt.arg)+"?"+directapi.Param+"="+directapi.Verify)
	w.Header().Set(directapi.Header+"-Verified", fmt.Sprintf("%d/%d", st.Verified, st.Size))
	writeJSON(w, r, http.StatusAccepted, "application/json", directapi.Status{Verified: st.Verified, Size: st.Size})
	return nil
}
