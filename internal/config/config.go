// Package config holds Skiff's deployment configuration: one plain struct
// that the CLI fills from flags and the Lambda mains from the environment,
// checked once at start-up by Validate.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// Backend names a storage backend.
type Backend string

// Backends.
const (
	BackendLocal Backend = "local"
	BackendAWS   Backend = "aws"
)

// Config is the configuration of one Skiff server or function.
type Config struct {
	// Addr is the listen address of `skiff serve`.
	Addr string
	// Backend selects the storage adapters.
	Backend Backend
	// DataDir is where the local backend keeps its files and database.
	DataDir string
	// Bucket and Table name the S3 bucket and DynamoDB table of the AWS
	// backend (SKIFF_S3_BUCKET, SKIFF_DYNAMODB_TABLE).
	Bucket, Table string
	// CreateResources creates the bucket and table when missing.
	CreateResources bool
	// MaxBody caps request bodies in bytes; 0 means no cap.
	MaxBody int64
	// TooLargeMessage is the message of the 413 for a body over MaxBody
	// ("": the limit and advice to push in chunks).
	TooLargeMessage string
	// BodyTimeout cuts a request whose body sends less than 1 KiB in that
	// time (slow or stalled clients); 0 means no limit. Servers only: a
	// Lambda function has no connection to time out.
	BodyTimeout time.Duration
	// RedirectMin is the smallest blob fetched by a redirect to a presigned
	// URL (AWS backend); -1 never redirects.
	RedirectMin int64
	// OperatorAPI serves the operator API under /v2/_skiff/.
	OperatorAPI bool
	// PolicyTTL bounds how stale a cached index policy may be (0: the
	// policy package's default).
	PolicyTTL time.Duration
	// Auth turns on authentication and authorization.
	Auth bool
	// InsecureNoAuth allows serving without Auth on a non-loopback address.
	InsecureNoAuth bool
	// AnonymousPull lists repository prefixes anyone may pull.
	AnonymousPull []string
	// TokenKeyFile holds the token signing key (created when missing);
	// TokenKeySecret is a Secrets Manager secret id holding it (AWS).
	TokenKeyFile, TokenKeySecret string
	// Realm is the public token URL; "" derives it from requests.
	Realm string
	// TrustForwarded believes X-Forwarded-* headers from a front door.
	TrustForwarded bool
	// ClientIPHeader, with TrustForwarded, names the one header the front
	// door sets to the client's address (replacing any the client sent):
	// it is the source address of the failed-login limit, instead of the
	// last X-Forwarded-For entry.
	ClientIPHeader string
	// DirectPart is the smallest part of a direct upload (0: the
	// registry's 64 MiB); tests shrink it.
	DirectPart int64
	// DefaultPolicies are index policies of the deployment (stack props);
	// a stored policy for the same prefix replaces one.
	DefaultPolicies []oci.Policy
	// DefaultRetention are retention policies of the deployment (stack
	// props); a stored one for the same prefix replaces one.
	DefaultRetention []oci.Retention
	// OriginSecret, when set, must arrive in OriginSecretHeader on every
	// request (the front door adds it; direct calls to a function URL
	// lack it). OriginSecretARN names a Secrets Manager secret holding it.
	OriginSecret, OriginSecretARN string
	// LogLevel is the minimum level logged.
	LogLevel slog.Level
	// GCGrace is the garbage collector's grace period: anything younger
	// is kept (0: registry.DefaultGrace). GCInterval is how often `skiff
	// serve` collects (0: never; the first pass runs one interval after
	// start). LinkWindow is the registry's link window (0: its default),
	// which collector and functions must share.
	GCGrace, GCInterval, LinkWindow time.Duration
	// SyncInterval is the time from one sync of the stored mirror rules to
	// the next (0: the sync function's default).
	SyncInterval time.Duration
	// ScheduledGC says a scheduled function collects (the AWS deployment):
	// the operator API runs no pass on request.
	ScheduledGC bool
}

// DefaultBodyTimeout is how long `skiff serve` waits for a request body to
// make progress (1 KiB) before it cuts the request.
const DefaultBodyTimeout = 30 * time.Second

// Default returns the configuration `skiff serve` starts from.
func Default() Config {
	return Config{Addr: "127.0.0.1:5000", Backend: BackendLocal, DataDir: "./data", RedirectMin: 1 << 20, BodyTimeout: DefaultBodyTimeout, LogLevel: slog.LevelInfo}
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("listen address %q: %w", c.Addr, err))
		}
	}
	for i, p := range c.DefaultPolicies {
		if _, err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("default policy %d: %w", i, err))
		}
	}
	for i, r := range c.DefaultRetention {
		if _, err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("default retention policy %d: %w", i, err))
		}
	}
	switch c.Backend {
	case BackendLocal:
		if strings.TrimSpace(c.DataDir) == "" {
			errs = append(errs, errors.New("the local backend needs a data directory"))
		}
	case BackendAWS:
		if c.Bucket == "" {
			errs = append(errs, errors.New("the aws backend needs a bucket (SKIFF_S3_BUCKET)"))
		}
		if c.Table == "" {
			errs = append(errs, errors.New("the aws backend needs a table (SKIFF_DYNAMODB_TABLE)"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown backend %q (want %q or %q)", c.Backend, BackendLocal, BackendAWS))
	}
	if !c.Auth && !c.InsecureNoAuth && c.Addr != "" {
		if host, _, err := net.SplitHostPort(c.Addr); err == nil && !isLoopback(host) {
			errs = append(errs, fmt.Errorf("refusing to serve %s without authentication: turn it on with --auth, or say --insecure-no-auth", c.Addr))
		}
	}
	if len(c.AnonymousPull) > 0 && !c.Auth {
		errs = append(errs, errors.New("anonymous pull prefixes only make sense with authentication on (--auth)"))
	}
	if c.ClientIPHeader != "" && !c.TrustForwarded {
		errs = append(errs, errors.New("a client IP header is only believed behind a front door: add --trust-forwarded"))
	}
	if c.BodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("body timeout %s must not be negative", c.BodyTimeout))
	}
	if c.GCGrace < 0 || c.GCInterval < 0 || c.LinkWindow < 0 {
		errs = append(errs, errors.New("the grace period, collection interval and link window must not be negative"))
	}
	if c.GCGrace > 0 && c.LinkWindow > 0 && c.GCGrace < 2*c.LinkWindow {
		errs = append(errs, fmt.Errorf("grace period %s is shorter than two link windows (%s each)", c.GCGrace, c.LinkWindow))
	}
	if c.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("max body %d must not be negative", c.MaxBody))
	}
	return errors.Join(errs...)
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
