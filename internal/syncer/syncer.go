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
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/skiff-registry/skiff/internal/copier"
	"github.com/skiff-registry/skiff/internal/imageref"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/storage"
)

// checkpointKey holds the run in progress.
const checkpointKey = "sync/checkpoint"

// maxAttempts bounds the invocations one rule may take in a run: a rule
// that never finishes in one (a layer too large to copy in 15 minutes)
// must not hold back the rules after it for ever.
const maxAttempts = 3

// tokenHeader carries the secret that the registry's loopback server asks
// of every request: only the copier's requests to it carry it, never one a
// redirect of an upstream sends there.
const tokenHeader = "X-Skiff-Sync-Token"

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
	Rules []string `json:"rules"`
	Next  int      `json:"next"`
	// Attempts counts the invocations that began the rule at Next (one
	// that died, out of memory, counts too): past maxAttempts it is
	// recorded as failed and the run goes on without it.
	Attempts int       `json:"attempts,omitempty"`
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
	token := rand.Text()
	dst, stop, err := serve(s.Handler, token)
	if err != nil {
		return inv, err
	}
	defer stop()
	// A rule still copying at deadline - margin/2 is cut (the next
	// invocation runs it again, skipping what it copied); none starts
	// after deadline - margin.
	runCtx, cancel := context.WithDeadline(ctx, deadline.Add(-margin/2))
	defer cancel()
	saveCtx, cancelSave := context.WithTimeout(context.WithoutCancel(ctx), time.Until(deadline))
	defer cancelSave()
	for st.Next < len(st.Rules) && s.now().Before(deadline.Add(-margin)) {
		name := st.Rules[st.Next]
		if st.Attempts >= maxAttempts {
			s.record(saveCtx, mirror.Run{Rule: name, Started: s.now(), Finished: s.now(), Errors: []string{
				fmt.Sprintf("not finished in %d invocations of the sync (each at most its 15 minutes): skipped in this run", maxAttempts)}})
		} else {
			// Counted before the rule runs, so an invocation that dies in
			// it counts too.
			st.Attempts++
			if version, err = s.save(saveCtx, st, version); err != nil {
				return inv, err
			}
			if s.runRule(runCtx, dst, token, name, st.Attempts) != nil {
				break // cut off: this rule again next time
			}
			inv.Ran = append(inv.Ran, name)
		}
		st.Next, st.Attempts = st.Next+1, 0
		if version, err = s.save(saveCtx, st, version); err != nil {
			return inv, err
		}
	}
	st.Holder, st.Until = "", time.Time{}
	if st.Next >= len(st.Rules) {
		st.Finished = s.now()
	}
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
func (s *Syncer) runRule(ctx context.Context, dst, token, name string, attempt int) error {
	rec, err := s.Rules.Get(ctx, name)
	if errors.Is(err, policy.ErrNotFound) {
		return nil // deleted since the run began: nothing to run or record
	}
	run := mirror.Run{Rule: name, Started: s.now()}
	defer func() {
		if ctx.Err() != nil {
			run.Errors = append(run.Errors, fmt.Sprintf("cut off at the end of an invocation (attempt %d of %d); the next invocation goes on, skipping what is copied", attempt, maxAttempts))
		}
		run.Finished = s.now()
		// The loopback address means nothing to whoever reads this.
		for i, e := range run.Errors {
			run.Errors[i] = strings.ReplaceAll(e, dst, mirror.LocalHost)
		}
		saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		s.record(saveCtx, run)
	}()
	fail := func(err error) error {
		run.Errors = append(run.Errors, err.Error())
		s.log().WarnContext(ctx, "mirror rule", "rule", name, "error", strings.ReplaceAll(err.Error(), dst, mirror.LocalHost))
		return ctx.Err()
	}
	if err != nil {
		return fail(fmt.Errorf("read the rule: %w", err))
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
	base := s.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c, err := copier.New(copier.Options{Selection: sel, Keychain: keychain, Transport: tokenTransport{base, dst, token}, DirectMin: -1, UserAgent: "skiff-sync"})
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

// record saves a rule's run; a failure is logged (the run's counts are in
// the log line too).
func (s *Syncer) record(ctx context.Context, run mirror.Run) {
	if err := mirror.SaveRun(ctx, s.Settings, run); err != nil {
		s.log().ErrorContext(ctx, "record a mirror run", "rule", run.Rule, "error", err.Error())
	}
}

// tokenTransport adds the loopback server's token to the copier's own
// requests to it, and to no other: not to an upstream, and not to a
// request that follows a redirect (an upstream's answer could point one at
// the loopback server).
type tokenTransport struct {
	next  http.RoundTripper
	host  string
	token string
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == t.host && r.Response == nil {
		r = r.Clone(r.Context())
		r.Header.Set(tokenHeader, t.token)
	}
	return t.next.RoundTrip(r)
}

// keychain gives the rule's source registry the credentials of its
// secret, and every other registry (this one's loopback server) none.
func (s *Syncer) keychain(ctx context.Context, r mirror.Rule) (authn.Keychain, error) {
	if r.Credentials == "" {
		return authn.NewMultiKeychain(), nil
	}
	if s.Secret == nil {
		return nil, fmt.Errorf("the rule's credentials are in secret %s, and this sync reads no secrets", r.Credentials)
	}
	p, err := imageref.Parse(r.Source, mirror.LocalHost+"/"+r.Target, r.Tags != "")
	if err != nil {
		return nil, err
	}
	src := p.SrcRepo
	if p.Src != nil {
		src = p.Src.Context()
	}
	user, password, err := s.Secret(ctx, r.Credentials)
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", r.Credentials, err)
	}
	// The registry's canonical name, as go-containerregistry asks the
	// keychain with it (docker.io is index.docker.io).
	return hostKeychain{host: src.RegistryStr(), auth: &authn.Basic{Username: user, Password: password}}, nil
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

// serve serves h on a loopback port of this process for the copier, to
// requests that carry token alone.
func serve(h http.Handler, token string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("serve the registry to the sync: %w", err)
	}
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(tokenHeader)), []byte(token)) != 1 {
			http.Error(w, "this server serves the sync alone", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: guarded, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // no handler lives on into a frozen sandbox
		_ = srv.Close()
	}, nil
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
