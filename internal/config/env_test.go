package config

import (
	"github.com/skiff-registry/skiff/internal/deploy"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SKIFF_S3_BUCKET":        "b",
		"SKIFF_DYNAMODB_TABLE":   "t",
		"SKIFF_ANONYMOUS_PULL":   "public, library/",
		"SKIFF_DEFAULT_POLICIES": `[{"prefix":"mirror/","indexChildren":"none","imageBlobs":"optional"}]`,
		"LOG_LEVEL":              "debug",
		"SKIFF_GC_GRACE":         "36h",
	}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !c.Auth || c.MaxBody != 4<<20 || c.RedirectMin != 1<<20 || len(c.AnonymousPull) != 2 || c.DefaultPolicies[0].Prefix != "mirror" || c.LogLevel.String() != "DEBUG" || c.GCGrace != 36*time.Hour {
		t.Errorf("config: %+v", c)
	}
	// A streamed body over the cap gets the front door's words.
	if c.TooLargeMessage != deploy.TooLargeAdvice(4<<20) {
		t.Errorf("too-large message %q, want the front door's", c.TooLargeMessage)
	}
	// Behind CloudFront the client address is the viewer function's header.
	if !c.TrustForwarded || c.ClientIPHeader != deploy.ViewerIPHeader {
		t.Errorf("forwarded: trust %v, client IP header %q", c.TrustForwarded, c.ClientIPHeader)
	}
	env["SKIFF_TRUST_FORWARDED"] = "false"
	if c, err = FromEnv(func(k string) string { return env[k] }); err != nil || c.ClientIPHeader != "" {
		t.Errorf("SKIFF_TRUST_FORWARDED=false: client IP header %q, err %v", c.ClientIPHeader, err)
	}
	bad := map[string]string{"SKIFF_MAX_BODY": "lots", "SKIFF_DEFAULT_POLICIES": `[{"prefix":"","indexChildren":"x"}]`, "SKIFF_GC_GRACE": "a while"}
	_, err = FromEnv(func(k string) string { return bad[k] })
	for _, want := range []string{"SKIFF_MAX_BODY", "SKIFF_DEFAULT_POLICIES", "SKIFF_GC_GRACE", "bucket", "table"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}
