// Package httpapi serves the OCI distribution API (distribution-spec v1.1)
// over internal/registry. Handlers return errors; one writeError turns them
// into the spec's JSON error envelope.
//
// Routes are split into three groups, one per Lambda function, so each
// function can serve only its own: the manifest group (manifests,
// referrers), the blob group (blobs, uploads) and the catalog group
// (/v2/, _catalog, tags/list, and the operator API under /v2/_skiff/ when
// it is enabled, see operator.go).
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/registry"
)

// Group is a set of routes served together.
type Group int

// Route groups, one per Lambda function.
const (
	GroupManifest Group = 1 << iota
	GroupBlob
	GroupCatalog
	GroupAll = GroupManifest | GroupBlob | GroupCatalog
)

// API is the distribution API's http.Handler.
type API struct {
	reg     *registry.Registry
	opts    options
	handler http.Handler
	// fullLogged is when a full store was last logged (unix nanoseconds).
	fullLogged atomic.Int64
}

type options struct {
	log     *slog.Logger
	groups  Group
	maxBody int64
	// tooLargeMessage words the 413 of a body over maxBody ("": advice to
	// push in chunks).
	tooLargeMessage string
	redirectMin     int64
	operator        PolicyStore
	retention       RetentionStore
	mirror          MirrorStore
	mirrorRuns      func(context.Context) (map[string]mirror.Run, error)
	collect         Collect
	auth            *AuthConfig
	bodyTimeout     time.Duration
}

// Option configures an API.
type Option func(*options)

// WithLogger sets the logger for access and error lines (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithGroups limits the routes served (default GroupAll).
func WithGroups(g Group) Option { return func(o *options) { o.groups = g } }

// WithMaxBody caps request bodies at n bytes (default 0: no cap). A larger
// body gets 413 with advice to push in chunks. AWS mode sets about 4 MiB.
func WithMaxBody(n int64) Option { return func(o *options) { o.maxBody = n } }

// WithTooLargeMessage words the 413 SIZE_INVALID of a body over the cap
// (default: the limit and advice to push in chunks): a deployment knows
// more to advise (the Lambda functions name the ingest service, as their
// front door does).
func WithTooLargeMessage(msg string) Option {
	return func(o *options) { o.tooLargeMessage = msg }
}

// WithRedirectMin sets the smallest blob a GET redirects to the blob
// store's presigned URL (default 1 MiB; negative: never). Smaller blobs are
// served directly, with Docker-Content-Digest, saving clients a round trip;
// larger ones must not flow through a Lambda function.
func WithRedirectMin(n int64) Option { return func(o *options) { o.redirectMin = n } }

// New returns the API over reg.
func New(reg *registry.Registry, opts ...Option) *API {
	o := options{log: slog.New(slog.DiscardHandler), groups: GroupAll, redirectMin: 1 << 20}
	for _, opt := range opts {
		opt(&o)
	}
	a := &API{reg: reg, opts: o}
	a.handler = a.recoverer(http.HandlerFunc(a.route))
	a.handler = a.limitSlowBodies(a.handler)
	a.handler = a.accessLog(a.handler)
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// route is one matched request: its kind, repository and the last path
// element (reference, digest or session id).
type route struct {
	kind  string
	repo  string
	arg   string
	group Group
}

// Route kinds.
const (
	routeBase      = "base"
	routeCatalog   = "catalog"
	routeTags      = "tags"
	routeManifest  = "manifest"
	routeReferrers = "referrers"
	routeBlob      = "blob"
	routeUploads   = "uploads"
	routeUpload    = "upload"
)

// RouteGroup returns the group whose function serves path, a decoded URL
// path (r.URL.Path), or 0 when path is no registry route (every group
// answers it 404). It is parseRoute's classification, so the front door
// (tools/lambdafront, and the CloudFront Function in
// infra/stacks/frontdoor.go, which a test runs against it) routes with the
// grammar the functions serve. The token endpoint is under the operator
// root, so it is in GroupCatalog like the rest of /v2/_skiff/.
func RouteGroup(path string) Group {
	rt, ok := parseRoute(path)
	if !ok {
		return 0
	}
	return rt.group
}

// IsUploadRoute reports whether path (decoded, as for RouteGroup) is an
// upload route: POST .../blobs/uploads/ and a session's PATCH, PUT, GET
// and DELETE. A stack with an ingest service sends these there.
func IsUploadRoute(path string) bool {
	rt, ok := parseRoute(path)
	return ok && (rt.kind == routeUploads || rt.kind == routeUpload)
}

// parseRoute matches a /v2/ path. Repository names contain slashes, so the
// route is found from the end: the keyword sits just before the last
// element (or two before it for upload sessions), and what precedes it is
// the name.
func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{kind: routeBase, group: GroupCatalog}, true
		}
		return route{}, false
	}
	if rest == "" {
		return route{kind: routeBase, group: GroupCatalog}, true
	}
	if rest == "_catalog" {
		return route{kind: routeCatalog, group: GroupCatalog}, true
	}
	if op, ok := strings.CutPrefix(rest, operatorRoot); ok && (op == "" || op[0] == '/') {
		return parseOperatorRoute(strings.TrimPrefix(op, "/")), true
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	name := func(k int) string { return strings.Join(segs[:n-k], "/") }
	switch {
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			return route{kind: routeUploads, repo: name(3), group: GroupBlob}, true
		}
		return route{kind: routeUpload, repo: name(3), arg: segs[n-1], group: GroupBlob}, true
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return route{kind: routeUploads, repo: name(2), group: GroupBlob}, true
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return route{kind: routeTags, repo: name(2), group: GroupCatalog}, true
	case n >= 3 && segs[n-2] == "manifests":
		return route{kind: routeManifest, repo: name(2), arg: segs[n-1], group: GroupManifest}, true
	case n >= 3 && segs[n-2] == "referrers":
		return route{kind: routeReferrers, repo: name(2), arg: segs[n-1], group: GroupManifest}, true
	case n >= 3 && segs[n-2] == "blobs":
		return route{kind: routeBlob, repo: name(2), arg: segs[n-1], group: GroupBlob}, true
	}
	return route{}, false
}
