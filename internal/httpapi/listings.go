package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/skiff-registry/skiff/internal/directapi"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// base answers /v2/: the API version check clients start with. It
// advertises sparse indexes under Quay's header name: they are accepted
// per repository, by index policy (internal/policy).
func (a *API) base(w http.ResponseWriter, r *http.Request, _ route) error {
	w.Header().Set("X-Sparse-Manifest-Support", "true")
	if a.reg.DirectSupported() {
		w.Header().Set(directapi.Header, directapi.Version) // Skiff's own: docs/mirror.md
	}
	writeJSON(w, r, http.StatusOK, "application/json", struct{}{})
	return nil
}

// page reads the n and last query parameters of a listing.
func page(r *http.Request) (storage.Page, bool, error) {
	q := r.URL.Query()
	p := storage.Page{After: q.Get("last")}
	if s := q.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return p, false, oci.Errorf(oci.CodeUnsupported, "query parameter n=%q must be a non-negative integer", s).WithStatus(http.StatusBadRequest)
		}
		if n == 0 {
			return p, true, nil
		}
		p.Limit = n
	}
	return p, false, nil
}

// setNext adds the Link header of the next page.
func setNext(w http.ResponseWriter, path string, q url.Values, p storage.Page, last string) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("last", last)
	if p.Limit > 0 {
		q.Set("n", strconv.Itoa(p.Limit))
	}
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
}

// catalog answers /v2/_catalog (spec "Listing Repositories").
func (a *API) catalog(w http.ResponseWriter, r *http.Request, _ route) error {
	p, empty, err := page(r)
	if err != nil {
		return err
	}
	repos := []string{}
	if !empty {
		visible, err := a.pullable(r)
		if err != nil {
			return err
		}
		got, more, err := a.reg.Catalog(r.Context(), p, visible)
		if err != nil {
			return err
		}
		repos = append(repos, got...)
		// The cursor is the last name listed: one the caller may pull.
		if more {
			setNext(w, "/v2/_catalog", nil, p, got[len(got)-1])
		}
	}
	writeJSON(w, r, http.StatusOK, "application/json", map[string]any{"repositories": repos})
	return nil
}

// tags answers /v2/<name>/tags/list (spec "Listing Tags").
func (a *API) tags(w http.ResponseWriter, r *http.Request, rt route) error {
	p, empty, err := page(r)
	if err != nil {
		return err
	}
	tags := []string{}
	if !empty {
		got, more, err := a.reg.ListTags(r.Context(), rt.repo, p)
		if err != nil {
			return err
		}
		tags = append(tags, got...)
		if more {
			setNext(w, "/v2/"+rt.repo+"/tags/list", nil, p, tags[len(tags)-1])
		}
	}
	writeJSON(w, r, http.StatusOK, "application/json", map[string]any{"name": rt.repo, "tags": tags})
	return nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own value types reach here; should one ever fail to
		// marshal, the client gets a generic 500, not a dropped connection.
		requestInfo(r.Context()).err = "marshal response: " + err.Error()
		status, contentType = http.StatusInternalServerError, "application/json"
		body = oci.Envelope(oci.Errorf(oci.CodeUnknown, "internal error"))
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
