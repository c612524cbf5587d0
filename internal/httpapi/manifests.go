package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// getManifest answers GET and HEAD /v2/<name>/manifests/<reference>.
func (a *API) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ref, err := oci.ParseReference(rt.arg)
	if err != nil {
		return err
	}
	m, err := a.reg.ResolveManifest(r.Context(), rt.repo, ref)
	if err != nil {
		return err
	}
	if ref.IsDigest() {
		// A client that finds a manifest by digest may name it in an
		// index next: a use keeps it from a retention rule for a while.
		if m, err = a.reg.UseManifest(r.Context(), rt.repo, m); err != nil {
			return err
		}
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	h.Set("Docker-Content-Digest", m.Digest.String())
	h.Set("ETag", `"`+m.Digest.String()+`"`)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	body, err := a.reg.ManifestBody(r.Context(), m)
	if err != nil {
		return err
	}
	defer body.Close()
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, body); err != nil {
		requestInfo(r.Context()).err = "write manifest body: " + err.Error()
	}
	return nil
}

// putManifest answers PUT /v2/<name>/manifests/<reference>[?tag=...].
func (a *API) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ref, err := oci.ParseReference(rt.arg)
	if err != nil {
		return err
	}
	if r.ContentLength > oci.MaxManifestSize {
		return manifestTooLarge()
	}
	// Read one byte past the limit to tell "at the limit" from "over it"
	// without buffering an unbounded body.
	body, err := io.ReadAll(io.LimitReader(r.Body, oci.MaxManifestSize+1))
	if err != nil {
		return errors.Join(oci.Errorf(oci.CodeManifestInvalid, "could not read the manifest body"), err)
	}
	if len(body) > oci.MaxManifestSize {
		return manifestTooLarge()
	}
	res, err := a.reg.PutManifest(r.Context(), rt.repo, ref, r.Header.Get("Content-Type"), body, r.URL.Query()["tag"])
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.repo+"/manifests/"+res.Digest.String())
	h.Set("Docker-Content-Digest", res.Digest.String())
	if res.Subject != "" {
		h.Set("OCI-Subject", res.Subject.String())
	}
	for _, t := range res.Tags {
		h.Add("OCI-Tag", t)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func manifestTooLarge() error {
	return oci.Errorf(oci.CodeSizeInvalid, "manifest exceeds the %d byte limit", oci.MaxManifestSize).WithStatus(http.StatusRequestEntityTooLarge)
}

// deleteManifest answers DELETE /v2/<name>/manifests/<reference>.
func (a *API) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ref, err := oci.ParseReference(rt.arg)
	if err != nil {
		return err
	}
	if err := a.reg.DeleteManifest(r.Context(), rt.repo, ref); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
