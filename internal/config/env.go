package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// FromEnv builds the configuration of a Lambda function from its
// environment (set by the CDK stack). Authentication is on unless
// deploy.EnvAuth is false: a deployed registry is reachable from the internet.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Backend:         BackendAWS,
		Bucket:          getenv(deploy.EnvBucket),
		Table:           getenv(deploy.EnvTable),
		MaxBody:         deploy.LambdaMaxBody,
		RedirectMin:     deploy.LambdaRedirectMin,
		Auth:            true,
		OperatorAPI:     true,
		TrustForwarded:  true,
		ClientIPHeader:  deploy.ViewerIPHeader,
		TokenKeySecret:  getenv(deploy.EnvTokenKeySecret),
		TokenKeyFile:    getenv(deploy.EnvTokenKeyFile),
		Realm:           getenv(deploy.EnvRealm),
		OriginSecret:    getenv(deploy.EnvOriginSecret),
		OriginSecretARN: getenv(deploy.EnvOriginSecretARN),
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
	intVar(deploy.EnvMaxBody, &c.MaxBody)
	intVar(deploy.EnvRedirectMin, &c.RedirectMin)
	boolVar(deploy.EnvAuth, &c.Auth)
	boolVar(deploy.EnvOperatorAPI, &c.OperatorAPI)
	boolVar(deploy.EnvTrustForwarded, &c.TrustForwarded)
	if !c.TrustForwarded {
		c.ClientIPHeader = ""
	}
	// A streamed body over the cap is cut by the function itself: it says
	// what the front door says of a declared one.
	if c.MaxBody > 0 {
		c.TooLargeMessage = deploy.TooLargeAdvice(c.MaxBody)
	}
	if !c.Auth {
		c.InsecureNoAuth = true
	}
	for _, p := range strings.Split(getenv(deploy.EnvAnonymousPull), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.AnonymousPull = append(c.AnonymousPull, p)
		}
	}
	c.DefaultPolicies = rulesFromEnv[oci.Policy](getenv, deploy.EnvDefaultPolicies, "policies", &errs)
	c.DefaultRetention = rulesFromEnv[oci.Retention](getenv, deploy.EnvDefaultRetention, "retention policies", &errs)
	durationFromEnv(getenv, deploy.EnvGCInterval, &c.GCInterval, &errs)
	durationFromEnv(getenv, deploy.EnvGCGrace, &c.GCGrace, &errs)
	durationFromEnv(getenv, deploy.EnvSyncInterval, &c.SyncInterval, &errs)
	if v := getenv(deploy.EnvLogLevel); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", deploy.EnvLogLevel, v, err))
		}
	}
	return c, errors.Join(append(errs, c.Validate())...)
}

// durationFromEnv sets *d from variable name if it is set, to a positive
// Go duration; problems go to errs.
func durationFromEnv(getenv func(string) string, name string, d *time.Duration, errs *[]error) {
	v := getenv(name)
	if v == "" {
		return
	}
	x, err := time.ParseDuration(v)
	if err != nil || x <= 0 {
		*errs = append(*errs, fmt.Errorf("%s=%q is not a positive duration such as 24h", name, v))
		return
	}
	*d = x
}

// rulesFromEnv decodes the JSON list of rules in variable name, each
// validated; problems go to errs.
func rulesFromEnv[P interface{ Validate() (P, error) }](getenv func(string) string, name, what string, errs *[]error) []P {
	v := getenv(name)
	if v == "" {
		return nil
	}
	var in, out []P
	if err := json.Unmarshal([]byte(v), &in); err != nil {
		*errs = append(*errs, fmt.Errorf("%s is not a JSON list of %s: %w", name, what, err))
	}
	for _, r := range in {
		vr, err := r.Validate()
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		out = append(out, vr)
	}
	return out
}
