package main

import (
	"net/url"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/httpapi"
)

// behaviors are the CloudFront behaviours of the stack (deploy.Behaviors,
// which infra/stacks builds the distribution from), in order: first match
// wins. In the stack they only attach the origins and pick the
// (identical) policies: the viewer-request function selects the origin
// (route).
var behaviors = deploy.Behaviors()

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

// route picks the function for a raw (escaped) request path as the
// distribution does. Its viewer-request function, which every behaviour
// runs, selects the origin of the path's route group, and that choice
// overrides the matched behaviour's origin; so the behaviour (glob) is
// only reported, for the log. The group is httpapi.RouteGroup of the
// decoded path, what the function serving it routes by; a test runs the
// stack's JavaScript against this over tricky and random paths.
func route(rawPath string) (fn, byBehavior string) {
	return viewerRequestOrigin(rawPath), behaviorFunction(rawPath)
}

// viewerRequestOrigin is the function the viewer-request function selects:
// the route group's, the default for a path that is no registry route or
// has a malformed escape (which every function refuses).
func viewerRequestOrigin(rawPath string) string {
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return defaultFunction
	}
	if fn, ok := groupFunctions[httpapi.RouteGroup(path)]; ok {
		return fn
	}
	return defaultFunction
}

// behaviorFunction is the function of the first behaviour whose pattern
// matches the path, else the default: where CloudFront would send it
// without the viewer-request function.
func behaviorFunction(path string) string {
	for _, b := range behaviors {
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
