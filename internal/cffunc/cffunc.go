// Package cffunc runs the code of a CloudFront Function (cloudfront-js-2.0)
// under Node, for tests: the stack's tests (infra/stacks) and the local
// front door's (tools/lambdafront) run the same viewer-request code with
// the same driver. Node is a superset of the runtime, so this checks the
// code's logic, not that CloudFront's runtime accepts it.
package cffunc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// Import must be the first line of a function that selects origins: Node
// has no cloudfront module, so Run puts a recorder in its place.
const Import = "import cf from 'cloudfront';"

// Result is what the function did with one event: the request it returned
// and every origin ID it selected, in order.
type Result struct {
	Request struct {
		URI     string                    `json:"uri"`
		Headers map[string]map[string]any `json:"headers"`
	} `json:"request"`
	// Response is set when the function answered the viewer itself
	// (returned a response object instead of the request).
	Response *Response `json:"response"`
	Origins  []string  `json:"origins"`
}

// Response is a response object a viewer-request function returns.
type Response struct {
	StatusCode int                       `json:"statusCode"`
	Headers    map[string]map[string]any `json:"headers"`
	Body       struct {
		Encoding string `json:"encoding"`
		Data     string `json:"data"`
	} `json:"body"`
}

// Event is a viewer-request event shaped like CloudFront's.
func Event(uri string, headers map[string]map[string]any) map[string]any {
	if headers == nil {
		headers = map[string]map[string]any{}
	}
	return map[string]any{
		"version": "1.0",
		"context": map[string]any{"distributionDomainName": "d111111abcdef8.cloudfront.net", "eventType": "viewer-request"},
		"viewer":  map[string]any{"ip": "198.51.100.7"},
		"request": map[string]any{"method": "GET", "uri": uri, "querystring": map[string]any{}, "headers": headers, "cookies": map[string]any{}},
	}
}

// Run runs code's handler on each event under node, in one process.
func Run(node, code string, events []map[string]any) ([]Result, error) {
	body, ok := strings.CutPrefix(code, Import+"\n")
	if !ok {
		return nil, fmt.Errorf("the function code does not start with %q (origin selection needs it on the first line)", Import)
	}
	const stub = `var selected = [];
var cf = { selectRequestOriginById: function (id) { selected.push(id); } };
`
	const driver = `
var events = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(events.map(function (e) {
  selected = [];
  var out = handler(e);
  if (out && out.statusCode !== undefined) return { response: out, origins: selected };
  return { request: out, origins: selected };
})));
`
	in, err := json.Marshal(events)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, "-e", stub+body+driver)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node: %w\n%s", err, stderr.Bytes())
	}
	var got []Result
	if err := json.Unmarshal(out, &got); err != nil {
		return nil, fmt.Errorf("node output %.300q: %w", out, err)
	}
	if len(got) != len(events) {
		return nil, fmt.Errorf("node answered %d events, want %d", len(got), len(events))
	}
	return got, nil
}

var (
	originsTable = regexp.MustCompile(`var origins = \{([^}]*)\};`)
	originsEntry = regexp.MustCompile(`(\w+): '([^']*)'`)
)

// Origins returns the code's `var origins = {name: 'id', ...};` table.
func Origins(code string) (map[string]string, error) {
	table := originsTable.FindStringSubmatch(code)
	if table == nil {
		return nil, fmt.Errorf("the function code has no `var origins = {...};` table")
	}
	got := map[string]string{}
	for _, m := range originsEntry.FindAllStringSubmatch(table[1], -1) {
		got[m[1]] = m[2]
	}
	return got, nil
}
