package httpapi

import (
	"context"
	"net/http"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

type handlerFunc func(w http.ResponseWriter, r *http.Request, rt route) error

// handlers maps route kind and method to a handler.
func (a *API) handlers(kind string) map[string]handlerFunc {
	switch kind {
	case routeBase:
		return map[string]handlerFunc{"GET": a.base, "HEAD": a.base}
	case routeCatalog:
		return map[string]handlerFunc{"GET": a.catalog}
	case routeTags:
		return map[string]handlerFunc{"GET": a.tags}
	case routeManifest:
		return map[string]handlerFunc{"GET": a.getManifest, "HEAD": a.getManifest, "PUT": a.putManifest, "DELETE": a.deleteManifest}
	case routeReferrers:
		return map[string]handlerFunc{"GET": a.referrers}
	case routeBlob:
		return map[string]handlerFunc{"GET": a.getBlob, "HEAD": a.getBlob, "DELETE": a.deleteBlob}
	case routeUploads:
		return map[string]handlerFunc{"POST": a.startUpload}
	case routeUpload:
		return map[string]handlerFunc{"GET": a.uploadStatus, "PATCH": a.patchUpload, "PUT": a.putUpload, "DELETE": a.cancelUpload}
	case routePolicies:
		return map[string]handlerFunc{"GET": a.policies().list}
	case routePolicy:
		h := a.policies()
		return map[string]handlerFunc{"GET": h.get, "PUT": h.put(a), "DELETE": h.del(a)}
	case routePolicyHistory:
		return map[string]handlerFunc{"GET": a.policies().history}
	case routeRetentions:
		return map[string]handlerFunc{"GET": a.retentions().list}
	case routeRetention:
		h := a.retentions()
		return map[string]handlerFunc{"GET": h.get, "PUT": h.put(a), "DELETE": h.del(a)}
	case routeRetentionHist:
		return map[string]handlerFunc{"GET": a.retentions().history}
	case routeMirrorRules:
		return map[string]handlerFunc{"GET": a.mirrorRules().list}
	case routeMirrorRule:
		h := a.mirrorRules()
		return map[string]handlerFunc{"GET": h.get, "PUT": h.put(a), "DELETE": h.del(a)}
	case routeMirrorHistory:
		return map[string]handlerFunc{"GET": a.mirrorRules().history}
	case routeMirrorRuns:
		return map[string]handlerFunc{"GET": a.mirrorRuns}
	case routeIndexStatus:
		return map[string]handlerFunc{"GET": a.indexStatus}
	case routeGC:
		return map[string]handlerFunc{"POST": a.runGC}
	case routeUsers:
		return map[string]handlerFunc{"GET": a.listUsers}
	case routeUser:
		return map[string]handlerFunc{"GET": a.getUser, "PUT": a.putUser, "DELETE": a.deleteUser}
	case routeUserPassword:
		return map[string]handlerFunc{"PUT": a.setPassword, "PATCH": a.setPassword}
	case routeUserGrants:
		return map[string]handlerFunc{"POST": a.grant, "DELETE": a.revoke}
	}
	return nil
}

func (a *API) route(w http.ResponseWriter, r *http.Request) {
	info := requestInfo(r.Context())
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.URL.Path == deploy.TokenPath && a.opts.auth != nil && a.opts.groups&GroupCatalog != 0 {
		info.route = "token"
		if err := a.token(w, r); err != nil {
			a.writeError(w, r, err)
		}
		return
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok || rt.group&a.opts.groups == 0 {
		a.writeError(w, r, oci.Errorf(oci.CodeUnsupported, "no registry API endpoint at %s", r.URL.Path).WithStatus(http.StatusNotFound))
		return
	}
	info.route, info.repo, info.arg = rt.kind, rt.repo, rt.arg
	if isOperatorRoute(rt.kind) {
		switch {
		case a.opts.operator == nil:
			a.writeError(w, r, operatorOff())
			return
		case rt.kind == routeOperatorNoSuch:
			a.writeError(w, r, noOperatorEndpoint(r.URL.Path))
			return
		case isRetentionRoute(rt.kind) && a.opts.retention == nil:
			a.writeError(w, r, oci.Errorf(oci.CodeUnsupported, "this server keeps no retention policies").WithStatus(http.StatusNotFound))
			return
		case isMirrorRoute(rt.kind) && a.opts.mirror == nil:
			a.writeError(w, r, oci.Errorf(oci.CodeUnsupported, "this server keeps no mirror rules").WithStatus(http.StatusNotFound))
			return
		case isUserRoute(rt.kind) && a.opts.auth == nil:
			a.writeError(w, r, usersOff())
			return
		}
	}
	h, ok := a.handlers(rt.kind)[r.Method]
	if !ok {
		w.Header().Set("Allow", allowed(a.handlers(rt.kind)))
		a.writeError(w, r, oci.Errorf(oci.CodeUnsupported, "method %s is not supported on %s", r.Method, r.URL.Path).WithStatus(http.StatusMethodNotAllowed))
		return
	}
	if rt.repo != "" {
		if err := oci.ValidateRepository(rt.repo); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if a.opts.auth != nil {
		p, err := a.authenticate(r)
		if err == nil {
			info.user = p.Name
			err = a.authorize(r, rt, p)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	}
	if err := h(w, r, rt); err != nil {
		a.writeError(w, r, err)
	}
}

func allowed(m map[string]handlerFunc) string {
	s := ""
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		if _, ok := m[method]; ok {
			if s != "" {
				s += ", "
			}
			s += method
		}
	}
	return s
}
