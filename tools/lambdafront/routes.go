package main

import (
	"net/url"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/httpapi"
)

// defaultFunction serves what no behaviour matches, and what the
// viewer-request function finds no registry route in (/v2/ and _catalog
// are catalog routes anyway).
const defaultFunction = deploy.DefaultFunction

// functions are the three function names, in start order.
var functions = deploy.Functions()

// groupFunctions names the function of each route group.
var groupFunctions = map[httpapi.Group]string{
	httpapi.GroupManifest: deploy.FunctionManifest,
	httpapi.GroupBlob:     deploy.FunctionBlob,
	httpapi.GroupCatalog:  deploy.FunctionCatalog,
}

// decision is what the stack's viewer-request function does with a
// request: select an origin (a function, or deploy.Ingest), or answer it
// itself with 413 (refuse).
type decision struct {
	origin string
	refuse bool
}

// viewerRequest decides for a raw (escaped) request path and its declared
// body length (-1: none) as the viewer-request function does
// (infra/stacks/viewer-request.js; a test runs that code under Node
// against this over tricky and random paths): the origin of the path's
// route group, read from the decoded path as the functions route it
// (httpapi.RouteGroup); upload routes to the ingest service when the
// front door has one; and, for a request bound for a function with a
// Content-Length over the functions' cap, the registry's 413 instead of
// Lambda's.
func viewerRequest(rawPath string, contentLength int64, ingest bool) decision {
	origin := defaultFunction
	path, err := url.PathUnescape(rawPath)
	if err == nil {
		if fn, ok := groupFunctions[httpapi.RouteGroup(path)]; ok {
			origin = fn
		}
		if ingest && httpapi.IsUploadRoute(path) {
			origin = deploy.Ingest
		}
	}
	return decision{origin: origin, refuse: origin != deploy.Ingest && contentLength > deploy.LambdaMaxBody}
}

// behaviorOrigin is the origin of the first behaviour whose pattern
// matches the path, else the default: where CloudFront would send it
// without the viewer-request function. Only logged: the function's
// choice overrides it.
func behaviorOrigin(path string, ingest bool) string {
	for _, b := range deploy.Behaviors(ingest) {
		if matchPattern(b.Pattern, path) {
			return b.Function
		}
	}
	return defaultFunction
}

// matchPattern reports whether path matches a CloudFront path pattern:
// case-sensitive, `*` matches any run of characters, `/` included, and
// `?` exactly one.
func matchPattern(pattern, path string) bool {
	// Iterative wildcard matching with backtracking to the last `*`.
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(path) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == path[s]):
			p++
			s++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, s
			p++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
