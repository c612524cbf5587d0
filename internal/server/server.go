// Package server assembles the registry's http.Handler from a Config and
// opened stores: the one place where the upload key, the policy cache, the
// registry and the HTTP API are wired, shared by `skiff serve`, the Lambda
// functions and the benchmarks so they cannot drift apart.
package server

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Server is an assembled registry.
type Server struct {
	Handler  http.Handler
	Registry *registry.Registry
	Policies *policy.Store
	// PolicyCache is what the PUT path reads policies through; its TTL
	// bounds how stale they may be.
	PolicyCache *policy.Cache
	// Users is the user store when authentication is on.
	Users *auth.Users
}

// Failed logins allowed per user and per source address per window.
const (
	failedLoginsAllowed = 10
	failedLoginWindow   = time.Minute
)

// Collector returns the garbage collector of stores, with cfg's grace
// period and link window (the registry's), and the retention policies
// stored and cfg's defaults.
func Collector(cfg config.Config, stores backend.Stores, log *slog.Logger, dryRun bool) (*gc.Collector, error) {
	return gc.New(stores.Blobs, stores.Meta, gc.Options{Grace: cfg.GCGrace, Window: cfg.LinkWindow, DryRun: dryRun, Log: log,
		Retention: RetentionRules(policy.NewRetentionStore(stores.Meta), cfg.DefaultRetention)})
}

// RetentionRules returns the retention policies in force: those stored,
// and each default whose prefix has none stored.
func RetentionRules(store *policy.RetentionStore, defaults []oci.Retention) func(context.Context) ([]oci.Retention, error) {
	return func(ctx context.Context) ([]oci.Retention, error) {
		recs, err := store.List(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]oci.Retention, 0, len(recs)+len(defaults))
		stored := map[string]bool{}
		for _, r := range recs {
			out = append(out, r.Policy)
			stored[r.Policy.Prefix] = true
		}
		for _, d := range defaults {
			if !stored[d.Prefix] {
				out = append(out, d)
			}
		}
		return out, nil
	}
}

// New wires the registry over stores as cfg says, serving the route
// groups in groups. It reads the shared upload-session key (one store
// read, at start-up).
func New(ctx context.Context, cfg config.Config, stores backend.Stores, groups httpapi.Group, log *slog.Logger) (*Server, error) {
	key, err := registry.LoadUploadKey(ctx, stores.Meta)
	if err != nil {
		return nil, fmt.Errorf("load upload key: %w", err)
	}
	// Index policies are read through a cache bounded by its TTL; a change
	// made through this process's own store invalidates it at once.
	policies := policy.NewStore(stores.Meta)
	cache := policy.NewCache(policies, cfg.PolicyTTL, cfg.DefaultPolicies...)
	policies.OnChange(cache.Invalidate)
	regOpts := []registry.Option{registry.WithLogger(log), registry.WithUploadKey(key), registry.WithPolicies(cache)}
	if cfg.DirectPart > 0 {
		regOpts = append(regOpts, registry.WithDirectPart(cfg.DirectPart))
	}
	if cfg.GCGrace > 0 {
		regOpts = append(regOpts, registry.WithGrace(cfg.GCGrace))
	}
	if cfg.LinkWindow > 0 {
		regOpts = append(regOpts, registry.WithLinkWindow(cfg.LinkWindow))
	}
	if stores.Exclusive {
		regOpts = append(regOpts, registry.WithExclusiveStore())
	}
	reg, err := registry.New(stores.Blobs, stores.Meta, regOpts...)
	if err != nil {
		return nil, err
	}
	apiOpts := []httpapi.Option{
		httpapi.WithLogger(log),
		httpapi.WithGroups(groups),
		httpapi.WithMaxBody(cfg.MaxBody),
		httpapi.WithTooLargeMessage(cfg.TooLargeMessage),
		httpapi.WithBodyTimeout(cfg.BodyTimeout),
		httpapi.WithRedirectMin(cfg.RedirectMin),
	}
	if cfg.OperatorAPI {
		apiOpts = append(apiOpts, httpapi.WithOperator(policies), httpapi.WithRetention(policy.NewRetentionStore(stores.Meta)),
			httpapi.WithMirrorRules(mirror.NewStore(stores.Meta), func(ctx context.Context) (map[string]mirror.Run, error) { return mirror.Runs(ctx, stores.Meta) }))
	}
	if cfg.OperatorAPI && !cfg.ScheduledGC {
		apiOpts = append(apiOpts, httpapi.WithCollector(func(ctx context.Context, dry bool, grace time.Duration) (gc.Report, error) {
			c := cfg
			if grace > 0 {
				// A shorter grace than the servers' would let a pass take a
				// blob a HEAD left as it was (it refreshes at half theirs).
				if own := cmp.Or(cfg.GCGrace, registry.DefaultGrace); grace < own {
					return gc.Report{}, oci.Errorf(oci.CodeUnsupported, "grace %s is shorter than this server's (%s), which HEADs keep blobs for", grace, own).WithStatus(http.StatusBadRequest)
				}
				c.GCGrace = grace
			}
			collector, err := Collector(c, stores, log, dry)
			if err != nil {
				return gc.Report{}, err
			}
			return collector.Run(ctx)
		}))
	}
	var users *auth.Users
	if cfg.Auth {
		key, err := backend.LoadTokenKey(ctx, cfg)
		if err != nil {
			return nil, err
		}
		issuer, err := auth.NewIssuer(key, "skiff", auth.DefaultTokenTTL)
		if err != nil {
			return nil, err
		}
		users = auth.NewUsers(stores.Meta)
		apiOpts = append(apiOpts, httpapi.WithAuth(httpapi.AuthConfig{
			Users:          users,
			Issuer:         issuer,
			Limiter:        auth.NewLimiter(stores.Meta, failedLoginsAllowed, failedLoginWindow),
			AnonymousPull:  cfg.AnonymousPull,
			Realm:          cfg.Realm,
			TrustForwarded: cfg.TrustForwarded,
			ClientIPHeader: cfg.ClientIPHeader,
		}))
	}
	return &Server{Handler: httpapi.New(reg, apiOpts...), Registry: reg, Policies: policies, PolicyCache: cache, Users: users}, nil
}
