package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/servertest"
	"github.com/skiff-registry/skiff/internal/syncer"
)

// upstream is go-containerregistry's registry behind Basic auth
// (user:secret) with app:v1, app:v2, app:dev and tools:v1.
func upstream(t *testing.T) (string, map[string]v1.Image) {
	t.Helper()
	return servertest.Upstream(t, "user", "secret", "app:v1", "app:v2", "app:dev", "tools:v1")
}

// registryUnder is skiff (embedded) with a syncer over its stores, and the
// server a client reads it through.
func registryUnder(t *testing.T, password string) (*syncer.Syncer, string) {
	t.Helper()
	cfg := servertest.Config(t, config.BackendLocal)
	srv, stores := servertest.New(t, cfg)
	ts := httptest.NewServer(srv.Handler)
	t.Cleanup(ts.Close)
	s := &syncer.Syncer{
		Rules: mirror.NewStore(stores.Meta), Settings: stores.Meta, Handler: srv.Handler, Interval: time.Hour,
		Secret: func(_ context.Context, id string) (string, string, error) {
			if id != "skiff/mirror/up" {
				return "", "", errors.New("no such secret")
			}
			return "user", password, nil
		},
		Log: slog.New(slog.DiscardHandler),
	}
	return s, strings.TrimPrefix(ts.URL, "http://")
}

func addRules(t *testing.T, s *syncer.Syncer, rules ...mirror.Rule) {
	t.Helper()
	for _, r := range rules {
		if _, err := s.Rules.Set(context.Background(), r, "test"); err != nil {
			t.Fatal(err)
		}
	}
}

func digestAt(t *testing.T, host, ref string) (v1.Hash, error) {
	t.Helper()
	r, err := name.ParseReference(host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		return v1.Hash{}, err
	}
	return d.Digest, nil
}

// TestSyncRules: the stored rules, run by invocations, copy the upstream's
// images (two tags by pattern, one image) into the registry with the same
// digests, through the credentials of their secret; each rule's run is
// recorded; an invocation within the interval does nothing, and a new run
// copies nothing again.
func TestSyncRules(t *testing.T) {
	t.Parallel()
	up, images := upstream(t)
	s, reg := registryUnder(t, "secret")
	addRules(t, s,
		mirror.Rule{Name: "app", Source: up + "/app", Target: "mirror/app", Tags: "v[0-9]+", Credentials: "skiff/mirror/up"},
		mirror.Rule{Name: "tools", Source: up + "/tools:v1", Target: "mirror/tools", Credentials: "skiff/mirror/up"})
	ctx := context.Background()
	inv, err := s.Invoke(ctx, time.Now().Add(5*time.Minute), "inv-1")
	if err != nil {
		t.Fatal(err)
	}
	if inv.Outcome != "finished" || !slices.Equal(inv.Ran, []string{"app", "tools"}) {
		t.Fatalf("invocation %+v, want both rules run", inv)
	}
	for ref, repo := range map[string]string{"app:v1": "mirror/app:v1", "app:v2": "mirror/app:v2", "tools:v1": "mirror/tools:v1"} {
		want, _ := images[ref].Digest()
		if got, err := digestAt(t, reg, repo); err != nil || got != want {
			t.Errorf("%s: %v %v, want %s", repo, got, err, want)
		}
	}
	if _, err := digestAt(t, reg, "mirror/app:dev"); err == nil {
		t.Error("app:dev, which the pattern leaves out, was copied")
	}
	runs, err := mirror.Runs(ctx, s.Settings)
	if err != nil {
		t.Fatal(err)
	}
	if r := runs["app"]; r.Images != 2 || r.BlobsCopied != 6 || len(r.Errors) != 0 || r.Finished.IsZero() {
		t.Errorf("app's run %+v", r)
	}
	if inv, err := s.Invoke(ctx, time.Now().Add(5*time.Minute), "inv-2"); err != nil || inv.Outcome != "idle" {
		t.Errorf("an invocation within the interval: %+v %v, want idle", inv, err)
	}
	s.Interval = 0
	if inv, err := s.Invoke(ctx, time.Now().Add(5*time.Minute), "inv-3"); err != nil || inv.Outcome != "finished" {
		t.Fatalf("the next run: %+v %v", inv, err)
	}
	runs, _ = mirror.Runs(ctx, s.Settings)
	if r := runs["app"]; r.BlobsCopied != 0 || r.ManifestsSkipped != 2 {
		t.Errorf("app's second run %+v, want nothing copied", r)
	}
}

// TestSyncCheckpoint: a run whose invocation ends before its rules are all
// run goes on, in the next invocation, from the first not run.
func TestSyncCheckpoint(t *testing.T) {
	t.Parallel()
	up, _ := upstream(t)
	s, reg := registryUnder(t, "secret")
	var rules []mirror.Rule
	for _, n := range []string{"a", "b", "c"} {
		rules = append(rules, mirror.Rule{Name: n, Source: up + "/tools:v1", Target: "m/" + n, Credentials: "skiff/mirror/up"})
	}
	addRules(t, s, rules...)
	// Every reading of the clock is a minute on: an invocation with 3
	// minutes and a 30 s margin runs one rule or two, not three.
	var ticks atomic.Int64
	t0 := time.Now()
	s.Now = func() time.Time { return t0.Add(time.Duration(ticks.Add(1)) * time.Minute) }
	ctx := context.Background()
	var ran []string
	for i := range 5 {
		deadline := s.Now().Add(3 * time.Minute)
		inv, err := s.Invoke(ctx, deadline, "inv")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (len(inv.Ran) == 0 || inv.Outcome != "progress") {
			t.Fatalf("the first invocation: %+v, want a rule run and more left", inv)
		}
		ran = append(ran, inv.Ran...)
		if inv.Outcome == "finished" {
			break
		}
	}
	if !slices.Equal(ran, []string{"a", "b", "c"}) {
		t.Errorf("rules run across the invocations: %v, want a, b, c once each", ran)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := digestAt(t, reg, "m/"+n+":v1"); err != nil {
			t.Errorf("m/%s:v1: %v", n, err)
		}
	}
}

// TestSyncBadUpstream: a rule whose upstream refuses its credentials, one
// whose secret is missing and one whose upstream is unreachable each
// record an error naming why, and copy nothing; the other rules run.
func TestSyncBadUpstream(t *testing.T) {
	t.Parallel()
	up, _ := upstream(t)
	s, reg := registryUnder(t, "wrong")
	addRules(t, s,
		mirror.Rule{Name: "badcreds", Source: up + "/tools:v1", Target: "m/badcreds", Credentials: "skiff/mirror/up"},
		mirror.Rule{Name: "nosecret", Source: up + "/tools:v1", Target: "m/nosecret", Credentials: "skiff/mirror/other"},
		mirror.Rule{Name: "down", Source: "127.0.0.1:1/tools:v1", Target: "m/down"})
	ctx := context.Background()
	if inv, err := s.Invoke(ctx, time.Now().Add(5*time.Minute), "inv"); err != nil || inv.Outcome != "finished" {
		t.Fatalf("%+v %v", inv, err)
	}
	runs, _ := mirror.Runs(ctx, s.Settings)
	for rule, want := range map[string]string{"badcreds": "UNAUTHORIZED", "nosecret": "read secret skiff/mirror/other", "down": "connection refused"} {
		r := runs[rule]
		if len(r.Errors) != 1 || !strings.Contains(r.Errors[0], want) || r.BlobsCopied != 0 {
			t.Errorf("rule %s's run %+v, want one error saying %q", rule, r, want)
		}
		if _, err := digestAt(t, reg, "m/"+rule+":v1"); err == nil {
			t.Errorf("rule %s wrote its target", rule)
		}
	}
}

// TestSyncCutOff: a rule whose copy never fits in an invocation is cut off
// each time, recorded so, and after three invocations skipped for the run,
// so that the rule after it runs.
func TestSyncCutOff(t *testing.T) {
	t.Parallel()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/slow/blobs/") && r.Method == http.MethodGet {
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	up := strings.TrimPrefix(ts.URL, "http://")
	for _, ref := range []string{"slow:v1", "fast:v1"} {
		img, _ := random.Image(1024, 1)
		r, _ := name.ParseReference(up+"/"+ref, name.Insecure)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
	}
	s, dst := registryUnder(t, "")
	s.Margin = time.Second
	addRules(t, s,
		mirror.Rule{Name: "a-slow", Source: up + "/slow:v1", Target: "m/slow"},
		mirror.Rule{Name: "b-fast", Source: up + "/fast:v1", Target: "m/fast"})
	ctx := context.Background()
	var last syncer.Invocation
	for i := range 4 {
		inv, err := s.Invoke(ctx, time.Now().Add(2500*time.Millisecond), fmt.Sprintf("inv-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if i < 3 && (len(inv.Ran) != 0 || inv.Outcome != "progress") {
			t.Fatalf("invocation %d: %+v, want the slow rule cut off", i, inv)
		}
		last = inv
	}
	if last.Outcome != "finished" || !slices.Equal(last.Ran, []string{"b-fast"}) {
		t.Errorf("the fourth invocation: %+v, want the slow rule skipped and the fast one run", last)
	}
	runs, _ := mirror.Runs(ctx, s.Settings)
	if r := runs["a-slow"]; len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "not finished in 3 invocations") {
		t.Errorf("a-slow's run: %+v", r)
	}
	if r := runs["b-fast"]; r.Images != 1 || len(r.Errors) != 0 {
		t.Errorf("b-fast's run: %+v", r)
	}
	if _, err := digestAt(t, dst, "m/fast:v1"); err != nil {
		t.Errorf("m/fast:v1: %v", err)
	}
}
