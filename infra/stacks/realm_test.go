package stacks

import (
	"testing"

	"github.com/skiff-registry/skiff/internal/cffunc"
)

// runForwardedHost runs the viewer-request function's code (as
// synthesized) under Node on viewer requests shaped like CloudFront's, with
// a spoofed X-Forwarded-Host.
func runForwardedHost(t *testing.T, code string) {
	t.Helper()
	events := []map[string]any{
		cffunc.Event("/v2/", map[string]map[string]any{
			"host":              {"value": "registry.example.com"},
			"x-forwarded-host":  {"value": "evil.example", "multiValue": []any{map[string]any{"value": "evil.example"}, map[string]any{"value": "other"}}},
			"authorization":     {"value": "Bearer x"},
			"x-skiff-viewer-ip": {"value": "192.0.2.66"},
		}),
		cffunc.Event("/v2/", map[string]map[string]any{}), // no Host: the distribution's domain
	}
	got := runViewerRequest(t, code, events)
	want := []string{"registry.example.com", "d111111abcdef8.cloudfront.net"}
	for i, r := range got {
		xfh := r.Request.Headers["x-forwarded-host"]
		if len(xfh) != 1 || xfh["value"] != want[i] {
			t.Errorf("event %d: x-forwarded-host %v, want only {value: %s}", i, xfh, want[i])
		}
	}
	for i, r := range got {
		// cffunc.Event's viewer.ip; the client's own value is dropped.
		if ip := r.Request.Headers["x-skiff-viewer-ip"]; len(ip) != 1 || ip["value"] != "198.51.100.7" {
			t.Errorf("event %d: x-skiff-viewer-ip %v, want only {value: 198.51.100.7}", i, ip)
		}
	}
	if h := got[0].Request.Headers; h["authorization"]["value"] != "Bearer x" || h["host"]["value"] != "registry.example.com" {
		t.Errorf("other headers changed: %v", h)
	}
}
