package policy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/pkg/oci"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	meta, err := local.OpenMetaStore(t.TempDir() + "/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return NewStore(meta)
}

func TestSetGetListDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	sparse := oci.Policy{Prefix: "mirror/", IndexChildren: "none", ImageBlobs: "optional"}
	rec, err := st.Set(ctx, sparse, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Policy.Prefix != "mirror" || rec.UpdatedBy != "alice" || rec.Previous != nil || rec.UpdatedAt.IsZero() {
		t.Errorf("first set: %+v", rec)
	}
	amd := oci.Policy{Prefix: "mirror", IndexChildren: "platforms", Platforms: []string{"linux/amd64"}}
	rec, err = st.Set(ctx, amd, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Previous == nil || rec.Previous.IndexChildren != "none" || rec.UpdatedBy != "bob" {
		t.Errorf("second set must record bob and the previous policy: %+v", rec)
	}
	if _, err := st.Set(ctx, oci.Policy{Prefix: "team/app"}, "carol"); err != nil {
		t.Fatal(err)
	}
	// A prefix below mirror: its history is its own.
	if _, err := st.Set(ctx, oci.Policy{Prefix: "mirror/sub"}, "erin"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Delete(ctx, "mirror/sub", "erin"); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, "mirror/")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got.Policy, oci.Policy{Prefix: "mirror", IndexChildren: "platforms", Platforms: []string{"linux/amd64"}, ImageBlobs: "required"}); diff != "" {
		t.Errorf("get (-got +want):\n%s", diff)
	}
	list, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Policy.Prefix != "mirror" || list[1].Policy.Prefix != "team/app" {
		t.Errorf("list: %+v", list)
	}
	if _, err := st.Delete(ctx, "mirror", "dave"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "mirror"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if _, err := st.Delete(ctx, "mirror", "dave"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	hist, err := st.History(ctx, "mirror")
	if err != nil {
		t.Fatal(err)
	}
	var who []string
	for _, c := range hist {
		who = append(who, c.Action+" by "+c.By)
	}
	if diff := cmp.Diff(who, []string{"set by alice", "set by bob", "delete by dave"}); diff != "" {
		t.Errorf("history (-got +want):\n%s", diff)
	}
	if hist[2].Previous == nil || hist[2].Previous.IndexChildren != "platforms" {
		t.Errorf("delete must record the previous policy: %+v", hist[2])
	}
}

// TestInvalidChangesNothing: a refused policy leaves the stored one as it was.
func TestInvalidChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	if _, err := st.Set(ctx, oci.Policy{Prefix: "mirror", IndexChildren: "none"}, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []oci.Policy{
		{Prefix: "mirror", IndexChildren: "sometimes"},
		{Prefix: "mirror", IndexChildren: "platforms", Platforms: []string{"linux"}},
		{Prefix: "", IndexChildren: "none"},
		{Prefix: "Mirror", IndexChildren: "none"},
		{Prefix: "mirror", ImageBlobs: "maybe"},
	} {
		if _, err := st.Set(ctx, p, "mallory"); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
	if _, err := st.Set(ctx, oci.Policy{Prefix: "mirror", IndexChildren: "all"}, " "); err == nil {
		t.Error("a change without who accepted")
	}
	got, err := st.Get(ctx, "mirror")
	if err != nil {
		t.Fatal(err)
	}
	if got.Policy.IndexChildren != "none" || got.UpdatedBy != "alice" {
		t.Errorf("stored policy changed: %+v", got)
	}
	hist, _ := st.History(ctx, "mirror")
	if len(hist) != 1 {
		t.Errorf("history has %d lines, want 1", len(hist))
	}
}

// TestCacheStaleness: a change made elsewhere (another instance writing
// the same store) takes effect within the TTL, not before it expires.
func TestCacheStaleness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewCache(st, 10*time.Second)
	c.now = func() time.Time { return now }
	if p, err := c.PolicyFor(ctx, "mirror/alpine"); err != nil || p.IndexChildren != "all" {
		t.Fatalf("default policy: %+v %v", p, err)
	}
	other := NewStore(st.settings) // another instance
	if _, err := other.Set(ctx, oci.Policy{Prefix: "mirror", IndexChildren: "none"}, "op"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(9 * time.Second)
	if p, _ := c.PolicyFor(ctx, "mirror/alpine"); p.IndexChildren != "all" {
		t.Errorf("within the TTL the cached policy is served; got %s", p.IndexChildren)
	}
	now = now.Add(time.Second)
	if p, _ := c.PolicyFor(ctx, "mirror/alpine"); p.IndexChildren != "none" {
		t.Errorf("after the TTL the change must apply; got %s", p.IndexChildren)
	}
	if _, err := other.Set(ctx, oci.Policy{Prefix: "mirror", IndexChildren: "all"}, "op"); err != nil {
		t.Fatal(err)
	}
	c.Invalidate()
	if p, _ := c.PolicyFor(ctx, "mirror/alpine"); p.IndexChildren != "all" {
		t.Errorf("after Invalidate the change must apply at once; got %s", p.IndexChildren)
	}
}

// TestCacheDefaults: deployment defaults apply until a stored policy for
// the same prefix replaces them.
func TestCacheDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	c := NewCache(st, time.Second, oci.Policy{Prefix: "mirror", IndexChildren: "none", ImageBlobs: "optional"})
	if p, _ := c.PolicyFor(ctx, "mirror/app"); p.IndexChildren != "none" {
		t.Errorf("default not applied: %+v", p)
	}
	if _, err := st.Set(ctx, oci.Policy{Prefix: "mirror", IndexChildren: "all"}, "op"); err != nil {
		t.Fatal(err)
	}
	c.Invalidate()
	if p, _ := c.PolicyFor(ctx, "mirror/app"); p.IndexChildren != "all" {
		t.Errorf("stored policy must replace the default: %+v", p)
	}
}
