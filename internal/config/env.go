package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// OriginSecretHeader carries the front door's secret to the functions.
const OriginSecretHeader = "X-Skiff-Origin-Secret"

// ViewerIPHeader is the header the stack's viewer-request CloudFront
// Function sets to the viewer's address (event.viewer.ip), dropping any a
// client sent. Behind CloudFront and a Function URL the request's source
// is a CloudFront edge and X-Forwarded-For's last entry may be one too, so
// this is the client address the functions trust (ClientIPHeader).
const ViewerIPHeader = "X-Skiff-Viewer-Ip"

// Lambda defaults.
const (
	// lambdaMaxBody keeps a request under Lambda's 6 MB synchronous payload
	// once base64-encoded inside the event (4 MiB * 4/3 = 5.3 MiB).
	lambdaMaxBody = 4 << 20
	// lambdaRedirectMin sends every blob of a MiB or more to S3 by 307:
	// function responses are capped at 6 MB and cost function time.
	lambdaRedirectMin = 1 << 20
)

// FromEnv builds the configuration of a Lambda function from its
// environment (set by the CDK stack). Authentication is on unless
// SKIFF_AUTH=false: a deployed registry is reachable from the internet.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Backend:         BackendAWS,
		Bucket:          getenv("SKIFF_S3_BUCKET"),
		Table:           getenv("SKIFF_DYNAMODB_TABLE"),
		MaxBody:         lambdaMaxBody,
		RedirectMin:     lambdaRedirectMin,
		Auth:            true,
		OperatorAPI:     true,
		TrustForwarded:  true,
		ClientIPHeader:  ViewerIPHeader,
		TokenKeySecret:  getenv("SKIFF_AUTH_KEY_SECRET_ARN"),
		TokenKeyFile:    getenv("SKIFF_AUTH_KEY_FILE"),
		Realm:           getenv("SKIFF_REALM"),
		OriginSecret:    getenv("SKIFF_ORIGIN_SECRET"),
		OriginSecretARN: getenv("SKIFF_ORIGIN_SECRET_ARN"),
		LogLevel:        slog.LevelInfo,
	}
	var errs []error
	intVar := func(name string, dst *int64) {
		if v := getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not an integer", name, v))
				return
			}
			*dst = n
		}
	}
	boolVar := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not a boolean", name, v))
				return
			}
			*dst = b
		}
	}
	intVar("SKIFF_MAX_BODY", &c.MaxBody)
	intVar("SKIFF_REDIRECT_MIN", &c.RedirectMin)
	boolVar("SKIFF_AUTH", &c.Auth)
	boolVar("SKIFF_OPERATOR_API", &c.OperatorAPI)
	boolVar("SKIFF_TRUST_FORWARDED", &c.TrustForwarded)
	if !c.TrustForwarded {
		c.ClientIPHeader = ""
	}
	if !c.Auth {
		c.InsecureNoAuth = true
	}
	for _, p := range strings.Split(getenv("SKIFF_ANONYMOUS_PULL"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.AnonymousPull = append(c.AnonymousPull, p)
		}
	}
	if v := getenv("SKIFF_DEFAULT_POLICIES"); v != "" {
		var ps []oci.Policy
		if err := json.Unmarshal([]byte(v), &ps); err != nil {
			errs = append(errs, fmt.Errorf("SKIFF_DEFAULT_POLICIES is not a JSON list of policies: %w", err))
		}
		for _, p := range ps {
			vp, err := p.Validate()
			if err != nil {
				errs = append(errs, fmt.Errorf("SKIFF_DEFAULT_POLICIES: %w", err))
				continue
			}
			c.DefaultPolicies = append(c.DefaultPolicies, vp)
		}
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: %w", v, err))
		}
	}
	return c, errors.Join(append(errs, c.Validate())...)
}
