package config

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tweak   func(*Config)
		wantErr string // "" for valid
	}{
		{"default", func(*Config) {}, ""},
		{"open address without auth", func(c *Config) { c.Addr = "0.0.0.0:5000" }, "without authentication"},
		{"open address, said insecure", func(c *Config) { c.Addr, c.InsecureNoAuth = "0.0.0.0:5000", true }, ""},
		{"client IP header without trusting forwarded headers", func(c *Config) { c.ClientIPHeader = "X-Real-IP" }, "--trust-forwarded"},
		{"client IP header behind a front door", func(c *Config) { c.ClientIPHeader, c.TrustForwarded = "X-Real-IP", true }, ""},
		{"anonymous pull without auth", func(c *Config) { c.AnonymousPull = []string{"public"} }, "authentication on"},
		{"aws without a bucket", func(c *Config) { c.Backend, c.Table = BackendAWS, "t" }, "bucket"},
		{"negative max body", func(c *Config) { c.MaxBody = -1 }, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.tweak(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("want valid, got %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("want an error mentioning %q, got %v", tc.wantErr, err)
			}
		})
	}
}
