package main

// behavior is one CloudFront cache behaviour: a path pattern and the
// function behind it.
type behavior struct {
	pattern string
	fn      string
}

// behaviors are the CloudFront behaviours of the CDK stack
// (infra/stacks/frontdoor.go, `routes`), in the same order: first match
// wins. TestBehaviorsMatchStack keeps the two lists equal.
var behaviors = []behavior{
	{"/v2/_skiff/*", "catalog"},
	{"/v2/*/blobs/uploads", "blob"},
	{"/v2/*/blobs/uploads/*", "blob"},
	{"/v2/*/tags/list", "catalog"},
	{"/v2/*/manifests/*", "manifest"},
	{"/v2/*/referrers/*", "manifest"},
	{"/v2/*/blobs/*", "blob"},
}

// defaultFunction serves what no behaviour matches (/v2/, _catalog, the
// operator API, the token endpoint).
const defaultFunction = "catalog"

// functions are the three function names, in start order.
var functions = []string{"manifest", "blob", "catalog"}

// route picks the function for a request path as CloudFront does: the
// first behaviour whose pattern matches the path, else the default.
func route(path string) string {
	for _, b := range behaviors {
		if matchPattern(b.pattern, path) {
			return b.fn
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
