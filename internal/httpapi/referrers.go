package httpapi

import (
	"net/http"
	"net/url"

	"github.com/skiff-registry/skiff/pkg/oci"
)

type referrerDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// referrers answers GET /v2/<name>/referrers/<digest> (spec "Listing
// Referrers"): always an image index, empty when nothing refers to the
// digest, filtered by artifactType when asked.
func (a *API) referrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := oci.ParseDigest(rt.arg)
	if err != nil {
		return err
	}
	p, _, err := page(r)
	if err != nil {
		return err
	}
	artifactType := r.URL.Query().Get("artifactType")
	refs, more, err := a.reg.Referrers(r.Context(), rt.repo, d, artifactType, p)
	if err != nil {
		return err
	}
	manifests := make([]referrerDescriptor, 0, len(refs))
	for _, ref := range refs {
		manifests = append(manifests, referrerDescriptor{MediaType: ref.MediaType, Digest: ref.Digest.String(), Size: ref.Size, ArtifactType: ref.ArtifactType, Annotations: ref.Annotations})
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if more {
		q := url.Values{}
		if artifactType != "" {
			q.Set("artifactType", artifactType)
		}
		setNext(w, "/v2/"+rt.repo+"/referrers/"+d.String(), q, p, manifests[len(manifests)-1].Digest)
	}
	writeJSON(w, r, http.StatusOK, oci.MediaTypeImageIndex, map[string]any{
		"schemaVersion": 2,
		"mediaType":     oci.MediaTypeImageIndex,
		"manifests":     manifests,
	})
	return nil
}
