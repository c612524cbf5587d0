package stacks

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenPath: tokenPath repeats internal/httpapi.TokenPath (this module
// doesn't import the server); fail when the two drift apart.
func TestTokenPath(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "httpapi", "auth.go"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `TokenPath = "` + tokenPath + `"`; !strings.Contains(string(b), want) {
		t.Errorf("internal/httpapi/auth.go lacks %s: update tokenPath", want)
	}
}

// runForwardedHost runs the CloudFront Function's code (as synthesized)
// under Node on viewer requests shaped like CloudFront's, with a spoofed
// X-Forwarded-Host. Node is a superset of cloudfront-js-2.0, so this checks
// the logic, not that CloudFront's runtime accepts the code.
func runForwardedHost(t *testing.T, code string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH")
	}
	const driver = `
const events = JSON.parse(process.argv[1]);
console.log(JSON.stringify(events.map((e) => handler(e).headers)));
`
	type header = map[string]any
	event := func(headers map[string]header) map[string]any {
		return map[string]any{
			"version": "1.0",
			"context": map[string]any{"distributionDomainName": "d111111abcdef8.cloudfront.net", "eventType": "viewer-request"},
			"viewer":  map[string]any{"ip": "198.51.100.7"},
			"request": map[string]any{"method": "GET", "uri": "/v2/", "querystring": map[string]any{}, "headers": headers, "cookies": map[string]any{}},
		}
	}
	events := []map[string]any{
		event(map[string]header{
			"host":             {"value": "registry.example.com"},
			"x-forwarded-host": {"value": "evil.example", "multiValue": []any{map[string]any{"value": "evil.example"}, map[string]any{"value": "other"}}},
			"authorization":    {"value": "Bearer x"},
		}),
		event(map[string]header{}), // no Host: the distribution's domain
	}
	in, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "-e", code+driver, string(in)).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got []map[string]header
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	want := []string{"registry.example.com", "d111111abcdef8.cloudfront.net"}
	for i, h := range got {
		xfh := h["x-forwarded-host"]
		if len(xfh) != 1 || xfh["value"] != want[i] {
			t.Errorf("event %d: x-forwarded-host %v, want only {value: %s}", i, xfh, want[i])
		}
	}
	if got[0]["authorization"]["value"] != "Bearer x" || got[0]["host"]["value"] != "registry.example.com" {
		t.Errorf("other headers changed: %v", got[0])
	}
}
