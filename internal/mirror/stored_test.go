package mirror_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/teststores"
)

func TestRuleValidate(t *testing.T) {
	t.Parallel()
	ok := mirror.Rule{Name: "weekly/alpine/", Source: " up.example/library/alpine ", Target: "mirror/alpine", Tags: `3\.2[0-9]`, Credentials: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:skiff/mirror/hub-AbCdEf"}
	r, err := ok.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "weekly/alpine" || r.Source != "up.example/library/alpine" {
		t.Errorf("canonical form %+v", r)
	}
	for _, tc := range []struct {
		change func(*mirror.Rule)
		want   string
	}{
		{func(r *mirror.Rule) { r.Name = "" }, "rule name"},
		{func(r *mirror.Rule) { r.Name = "Weekly" }, "rule name"},
		{func(r *mirror.Rule) { r.Credentials = "two words" }, "credentials"},
		{func(r *mirror.Rule) { r.Source = "" }, "no source"},
		{func(r *mirror.Rule) { r.Target = "reg.example/mirror/alpine" }, "without a host"},
		{func(r *mirror.Rule) { r.Target = "mirror/" }, "must not end with '/'"},
		{func(r *mirror.Rule) { r.Target = "mirror/../x" }, "repository name"},
		{func(r *mirror.Rule) { r.Target = "_skiff/x" }, "repository name"},
		{func(r *mirror.Rule) { r.Credentials = "other/secret" }, "under skiff/mirror/"},
		{func(r *mirror.Rule) { r.Platforms = []string{"linux/amd46"} }, "unknown architecture"},
		{func(r *mirror.Rule) { r.Tags = "" }, "names a repository"},
		{func(r *mirror.Rule) { r.Tags = "(" }, "not a regular expression"},
	} {
		r := ok
		tc.change(&r)
		if _, err := r.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", r, err, tc.want)
		}
	}
}

// TestRuns: a rule's last run is kept, replaced by the next, and listed
// apart from the rules themselves.
func TestRuns(t *testing.T) {
	t.Parallel()
	s := teststores.Local(t, 5<<20)
	ctx := context.Background()
	store := mirror.NewStore(s.Meta)
	if _, err := store.Set(ctx, mirror.Rule{Name: "a", Source: "up.example/a:v1", Target: "m/a"}, "test"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	for i, run := range []mirror.Run{{Rule: "a", Started: t0, Images: 1}, {Rule: "a", Started: t0.Add(time.Hour), Images: 2, Errors: []string{"boom"}}, {Rule: "b", Started: t0}} {
		if err := mirror.SaveRun(ctx, s.Meta, run); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	runs, err := mirror.Runs(ctx, s.Meta)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs["a"].Images != 2 || len(runs["a"].Errors) != 1 || !runs["b"].Started.Equal(t0) {
		t.Errorf("runs %+v", runs)
	}
	if recs, err := store.List(ctx); err != nil || len(recs) != 1 {
		t.Errorf("the rules beside the runs: %+v %v", recs, err)
	}
}
