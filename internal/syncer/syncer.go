// Package syncer runs the registry's stored mirror rules (pull mode): it
// reads each rule's upstream with internal/copier and writes into the
// registry's own storage through the registry's HTTP handler, served in
// this process on a loopback port with no request body limit, so large
// layers need no client at all. The scheduled sync function invokes it;
// a run that outlasts an invocation goes on from its checkpoint (the next
// rule to run, in the settings store), and each rule's last run is kept
// where the operator API and `skiff mirror rule list` read it.
package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/skiff-registry/skiff/internal/copier"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/storage"
)

// checkpointKey holds the run in progress.
const checkpointKey = "sync/checkpoint"

// Syncer runs the stored rules.
type Syncer struct {
	// Rules is the rule store; Settings holds the checkpoint and the runs.
	Rules    *mirror.Store
	Settings storage.Settings
	// Handler is the registry, served to the copier in this process. It
	// must take any body size and need no credentials.
	Handler http.Handler
	// Secret returns the username and password a secret holds (Secrets
	// Manager in the function); nil: rules with credentials fail.
	Secret func(ctx context.Context, id string) (user, password string, err error)
	// Transport reaches the upstreams (default http.DefaultTransport).
	Transport http.RoundTripper
	// Interval is the time from a run's start to the next one's.
	Interval time.Duration
	// Margin is kept free before the deadline to save the checkpoint
	// (default 30 s).
	Margin time.Duration
	Log    *slog.Logger
	Now    func() time.Time
}

// state is the checkpoint: the run in progress, if any, and who holds it.
type state struct {
	Started time.Time `json:"started"`
	// Rules are the rule names the run takes, in order; Next the first
	// not yet run. A rule an invocation cut off is run again, skipping
	// what it had copied.
	Rules    []string  `json:"rules"`
	Next     int       `json:"next"`
	Finished time.Time `json:"finished,omitzero"`
	Holder   string    `json:"holder,omitempty"`
	Until    time.Time `json:"until,omitzero"`
}

// Invocation is what one invocation did.
type Invocation struct {
	// Outcome: "busy" (another invocation holds the run), "idle" (the
	// last run started less than Interval ago), "progress" (the run goes
	// on next time) or "finished".
	Outcome string     `json:"outcome"`
	Ran     []string   `json:"ran,omitempty"` // the rules this invocation ran
	Left    int        `json:"left"`
	Next    *time.Time `json:"next,omitempty"`
}

// Invoke runs rules until deadline (less the margin): the run in
// progress, or a new one once the last started an interval ago.
func (s *Syncer) Invoke(ctx context.Context, deadline time.Time, holder string) (Invocation, error) {
	now := s.now()
	margin := s.Margin
	if margin <= 0 {
		margin = 30 * time.Second
	}
	st, version, err := s.load(ctx)
	if err != nil {
		return Invocation{}, err
	}
	inv := Invocation{Left: len(st.Rules) - st.Next}
	switch {
	case st.Holder != "" && st.Holder != holder && now.Before(st.Until):
		inv.Outcome = "busy"
		return inv, nil
	case !st.Finished.IsZero() && now.Before(st.Started.Add(s.Interval)):
		next := st.Started.Add(s.Interval)
		inv.Outcome, inv.Next = "idle", &next
		return inv, nil
	case st.Started.IsZero() || !st.Finished.IsZero():
		recs, err := s.Rules.List(ctx)
		if err != nil {
			return inv, fmt.Errorf("list the mirror rules: %w", err)
		}
		st = state{Started: now}
		for _, r := range recs {
			st.Rules = append(st.Rules, r.Policy.Name)
		}
		sort.Strings(st.Rules)
	}
	st.Holder, st.Until = holder, deadline
	if version, err = s.save(ctx, st, version); errors.Is(err, storage.ErrConflict) {
		inv.Outcome = "busy"
		return inv, nil
	} else if err != nil {
		return inv, err
	}
	dst, stop, err := serve(s.Handler)
	if err != nil {
		return inv, err
	}
	defer stop()
	// A rule still copying at deadline - margin/2 is cut (the next
	// invocation runs it again, skipping what it copied); none starts
	// after deadline - margin.
	runCtx, cancel := context.WithDeadline(ctx, deadline.Add(-margin/2))
	defer cancel()
	for st.Next < len(st.Rules) && s.now().Before(deadline.Add(-margin)) {
		name := st.Rules[st.Next]
		if err := s.runRule(runCtx, dst, name); err != nil {
			break // cut off: this rule again next time
		}
		inv.Ran = append(inv.Ran, name)
		st.Next++
		if version, err = s.save(runCtx, st, version); err != nil {
			return inv, err
		}
	}
	st.Holder, st.Until = "", time.Time{}
	if st.Next >= len(st.Rules) {
		st.Finished = s.now()
	}
	saveCtx, cancelSave := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelSave()
	if _, err := s.save(saveCtx, st, version); err != nil {
		return inv, err
	}
	inv.Left = len(st.Rules) - st.Next
	inv.Outcome = "progress"
	if !st.Finished.IsZero() {
		inv.Outcome = "finished"
	}
	return inv, nil
}

// runRule copies one rule into the registry and records its run; the error
// is only a cut-off (the context ended): a rule that fails is recorded as
// failed, and the run goes on to the next.
func (s *Syncer) runRule(ctx context.Context, dst, name string) error {
	run := mirror.Run{Rule: name, Started: s.now()}
	defer func() {
		if ctx.Err() == nil {
			run.Finished = s.now()
		}
		saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := mirror.SaveRun(saveCtx, s.Settings, run); err != nil {
			s.log().ErrorContext(ctx, "record a mirror run", "rule", name, "error", err.Error())
		}
	}()
	fail := func(err error) error {
		run.Errors = append(run.Errors, err.Error())
		s.log().WarnContext(ctx, "mirror rule", "rule", name, "error", err.Error())
		return ctx.Err()
	}
	rec, err := s.Rules.Get(ctx, name)
	if err != nil {
		return fail(fmt.Errorf("read the rule: %w", err)) // deleted since the run began
	}
	rule := rec.Policy
	sel, err := copier.RuleSelection(rule)
	if err != nil {
		return fail(err)
	}
	keychain, err := s.keychain(ctx, rule)
	if err != nil {
		return fail(err)
	}
	c, err := copier.New(copier.Options{Selection: sel, Keychain: keychain, Transport: s.Transport, DirectMin: -1, UserAgent: "skiff-sync"})
	if err != nil {
		return fail(err)
	}
	if err := c.Preflight(ctx, rule.Source, dst+"/"+rule.Target); err != nil {
		return fail(err)
	}
	sum, err := c.Copy(ctx, rule.Source, dst+"/"+rule.Target)
	run.Images, run.ManifestsCopied, run.ManifestsSkipped = sum.Images, sum.ManifestsCopied, sum.ManifestsSkipped
	run.BlobsCopied, run.BlobsSkipped, run.Bytes = sum.BlobsCopied, sum.BlobsSkipped, sum.Bytes
	for _, f := range sum.Failures {
		run.Errors = append(run.Errors, f.Image+": "+f.Error)
	}
	if err != nil && len(sum.Failures) == 0 {
		run.Errors = append(run.Errors, err.Error())
	}
	s.log().InfoContext(ctx, "mirror rule", "rule", name, "images", run.Images, "blobsCopied", run.BlobsCopied, "blobsSkipped", run.BlobsSkipped, "bytes", run.Bytes, "errors", len(run.Errors))
	return ctx.Err()
}

// keychain gives the rule's source the credentials of its secret, and
// every other registry (this one's loopback server) none.
func (s *Syncer) keychain(ctx context.Context, r mirror.Rule) (authn.Keychain, error) {
	if r.Credentials == "" {
		return authn.NewMultiKeychain(), nil
	}
	if s.Secret == nil {
		return nil, fmt.Errorf("the rule's credentials are in secret %s, and this sync reads no secrets", r.Credentials)
	}
	user, password, err := s.Secret(ctx, r.Credentials)
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", r.Credentials, err)
	}
	host := sourceHost(r.Source)
	return hostKeychain{host: host, auth: &authn.Basic{Username: user, Password: password}}, nil
}

// hostKeychain has credentials for one registry.
type hostKeychain struct {
	host string
	auth authn.Authenticator
}

func (k hostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

func sourceHost(src string) string {
	for i := range len(src) {
		if src[i] == '/' {
			return src[:i]
		}
	}
	return src
}

// serve serves h on a loopback port of this process for the copier.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("serve the registry to the sync: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func (s *Syncer) load(ctx context.Context) (state, int64, error) {
	var st state
	cur, err := s.Settings.GetSetting(ctx, checkpointKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return st, 0, nil
	case err != nil:
		return st, 0, fmt.Errorf("read the sync checkpoint: %w", err)
	}
	if err := json.Unmarshal(cur.Value, &st); err != nil {
		return st, 0, fmt.Errorf("decode the sync checkpoint: %w", err)
	}
	return st, cur.Version, nil
}

func (s *Syncer) save(ctx context.Context, st state, prev int64) (int64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return prev, err
	}
	if err := s.Settings.PutSetting(ctx, storage.Setting{Key: checkpointKey, Value: b}, prev); err != nil {
		return prev, fmt.Errorf("store the sync checkpoint: %w", err)
	}
	return prev + 1, nil
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Syncer) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
