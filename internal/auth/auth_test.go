package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/skiff-registry/skiff/internal/storage/local"
)

func TestParseScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Scope
		wantErr bool
	}{
		{"repository:a/b:pull,push", Scope{"repository", "a/b", []string{"pull", "push"}}, false},
		{"repository:a:pull,pull", Scope{"repository", "a", []string{"pull"}}, false},
		{"registry:catalog:*", Scope{"registry", "catalog", []string{"*"}}, false},
		{"repository:A:pull", Scope{}, true},
		{"repository:a:fly", Scope{}, true},
		{"registry:other:*", Scope{}, true},
		{"repository:a:", Scope{}, true},
		{"nonsense", Scope{}, true},
	}
	for _, tc := range tests {
		got, err := ParseScope(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(got, tc.want); !tc.wantErr && diff != "" {
			t.Errorf("%s (-got +want):\n%s", tc.in, diff)
		}
	}
}

func TestGrant(t *testing.T) {
	t.Parallel()
	p := Principal{Name: "ci", Grants: []Grant{{Prefix: "team", Actions: []string{"pull", "push"}}}, AnonymousPull: []string{"public"}}
	req := []Scope{
		{"repository", "team/app", []string{"pull", "push", "delete"}},
		{"repository", "teamx/app", []string{"pull"}},
		{"repository", "public/base", []string{"pull", "push"}},
		{"registry", "catalog", []string{"*"}},
		{"registry", "admin", []string{"*"}},
	}
	want := []Scope{
		{"repository", "team/app", []string{"pull", "push"}},
		{"repository", "public/base", []string{"pull"}},
		{"registry", "catalog", []string{"*"}},
	}
	if diff := cmp.Diff(p.Grant(req), want); diff != "" {
		t.Errorf("granted (-got +want):\n%s", diff)
	}
	admin := Principal{Name: "root", Admin: true}
	if got := admin.Grant(req[4:]); len(got) != 1 {
		t.Errorf("admin must get registry:admin:*, got %v", got)
	}
	if (Principal{}).Allows(TypeRepository, "team/app", "pull") {
		t.Error("anonymous without anonymous pull allowed")
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	key := []byte(strings.Repeat("k", 32))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	iss, err := NewIssuer(key, "skiff", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	iss.now = func() time.Time { return now }
	tok, exp, _, err := iss.Issue("ci", "", []Scope{{"repository", "a", []string{"pull"}}})
	if err != nil || exp != 60 {
		t.Fatalf("issue: %v %d", err, exp)
	}
	c, err := iss.Verify(tok)
	if err != nil || c.Subject != "ci" || !c.Principal().Allows(TypeRepository, "a", "pull") || c.Principal().Allows(TypeRepository, "a", "push") {
		t.Fatalf("verify: %+v %v", c, err)
	}
	other, _ := NewIssuer([]byte(strings.Repeat("o", 32)), "skiff", time.Minute)
	if _, err := other.Verify(tok); err == nil {
		t.Error("a token signed with another key verified")
	}
	tampered := tok[:len(tok)-2] + "xx"
	if _, err := iss.Verify(tampered); err == nil {
		t.Error("a tampered token verified")
	}
	iss.now = func() time.Time { return now.Add(2 * time.Minute) }
	if _, err := iss.Verify(tok); err == nil {
		t.Error("an expired token verified")
	}
	otherService, _ := NewIssuer(key, "elsewhere", time.Minute)
	otherService.now = func() time.Time { return now }
	if _, err := otherService.Verify(tok); err == nil {
		t.Error("a token for another service verified")
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := openMeta(t)
	us := NewUsers(meta)
	if _, err := us.Add(ctx, "alice", "short", false, false); err == nil {
		t.Error("short password accepted")
	}
	if _, err := us.Add(ctx, "Alice", "a long enough password", false, false); err == nil {
		t.Error("invalid name accepted")
	}
	u, err := us.Add(ctx, "alice", "a long enough password", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u.Hash, "long enough") || !strings.HasPrefix(u.Hash, "$2") {
		t.Errorf("password not bcrypt-hashed: %q", u.Hash)
	}
	if _, err := us.Add(ctx, "alice", "another long password", false, false); !errors.Is(err, ErrUserExists) {
		t.Errorf("duplicate user: %v", err)
	}
	if _, err := us.Authenticate(ctx, "alice", "wrong password!!"); !errors.Is(err, ErrBadPassword) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := us.Authenticate(ctx, "nobody", "a long enough password"); !errors.Is(err, ErrBadPassword) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := us.GrantAccess(ctx, "alice", "team/", []string{"push", "pull"}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.GrantAccess(ctx, "alice", "team", []string{"delete"}); err != nil {
		t.Fatal(err)
	}
	u, err = us.Authenticate(ctx, "alice", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(u.Grants, []Grant{{Prefix: "team", Actions: []string{"delete", "pull", "push"}}}); diff != "" {
		t.Errorf("grants (-got +want):\n%s", diff)
	}
	u, err = us.Revoke(ctx, "alice", "team", []string{"delete", "push"})
	if err != nil || len(u.Grants) != 1 || len(u.Grants[0].Actions) != 1 {
		t.Errorf("revoke: %+v %v", u.Grants, err)
	}
	list, err := us.List(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("list: %v %v", list, err)
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	meta := openMeta(t)
	// Two limiters on one store: two processes (function instances).
	a, b := NewLimiter(meta, 3, time.Minute), NewLimiter(meta, 3, time.Minute)
	a.now = func() time.Time { return now }
	b.now = a.now
	waitOf := func(err error) time.Duration {
		t.Helper()
		var le *LimitError
		if err != nil && !errors.As(err, &le) {
			t.Fatal(err)
		}
		if le == nil {
			return 0
		}
		return le.Wait
	}
	for i, l := range []*Limiter{a, b, a} {
		if wait := waitOf(l.Blocked(ctx, "user:a")); wait != 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		if _, err := l.Reserve(ctx, "user:a", "addr:1"); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		now = now.Add(10 * time.Second)
	}
	// The window opened at the first attempt, 30 s ago: 30 s are left, on
	// either instance, and a fourth attempt is refused without counting.
	for _, l := range []*Limiter{a, b} {
		if wait := waitOf(l.Blocked(ctx, "user:b", "addr:1")); wait != 30*time.Second {
			t.Errorf("source address: blocked for %v, want the window's remaining 30s", wait)
		}
		if _, err := l.Reserve(ctx, "user:b", "addr:1"); waitOf(err) != 30*time.Second {
			t.Errorf("a fourth attempt from the address: %v, want refused for 30s", err)
		}
	}
	// The refused attempts gave back what they took: user:b is untouched.
	if counts, err := meta.GetCounts(ctx, []string{"user:b"}, now); err != nil || counts["user:b"].N != 0 {
		t.Errorf("user:b after refused attempts: %v %v, want no count", counts, err)
	}
	if wait := waitOf(b.Blocked(ctx, "user:b", "addr:2")); wait != 0 {
		t.Errorf("unrelated keys blocked for %v", wait)
	}
	// A success gives its attempt back while attempts are left.
	res, err := a.Reserve(ctx, "user:c")
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if counts, _ := meta.GetCounts(ctx, []string{"user:c"}, now); counts["user:c"].N != 0 {
		t.Errorf("a released attempt still counts: %v", counts)
	}
	now = now.Add(30 * time.Second)
	if wait := waitOf(a.Blocked(ctx, "user:a")); wait != 0 {
		t.Errorf("still blocked after the window: %v", wait)
	}
}

func TestAddrKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"192.0.2.1", "addr:192.0.2.1"},
		{"::ffff:192.0.2.1", "addr:192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "addr:2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "addr:2001:db8:1:2::/64"},
		{"not an address", "addr:unparsed"},
		{strings.Repeat("x", 5000), "addr:unparsed"},
	}
	for _, tc := range tests {
		if got := AddrKey(tc.in); got != tc.want {
			t.Errorf("AddrKey(%.20q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// 100 logins at once for one user, 99 with wrong passwords and one right:
// at most the limit of them are checked (the attempt is reserved before
// bcrypt), the rest are refused with a LimitError, and once the limit is
// used up the right password is refused too. TestFailedLoginsConcurrent in
// test/integration does the same over HTTP on both backends.
func TestLoginConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := openMeta(t)
	us := NewUsers(meta)
	const right = "the right password"
	if _, err := us.Add(ctx, "alice", right, false, false); err != nil {
		t.Fatal(err)
	}
	const limit = 10
	l := NewLimiter(meta, limit, time.Minute)
	var wg sync.WaitGroup
	var bad, limited, ok atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			pw := fmt.Sprintf("wrong password %d", i)
			if i == 99 {
				pw = right
			}
			_, err := us.Login(ctx, l, "alice", pw, "192.0.2.7")
			var le *LimitError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrBadPassword):
				bad.Add(1)
			case errors.As(err, &le):
				limited.Add(1)
			default:
				t.Errorf("login %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if checks := us.checks.Load(); checks > limit {
		t.Errorf("%d bcrypt checks ran, want at most %d", checks, limit)
	}
	if bad.Load()+ok.Load() > limit || bad.Load()+ok.Load()+limited.Load() != 100 {
		t.Errorf("%d refused as wrong, %d accepted, %d limited", bad.Load(), ok.Load(), limited.Load())
	}
	// The limit is reached: the right password is refused, without a check.
	before := us.checks.Load()
	_, err := us.Login(ctx, l, "alice", right, "198.51.100.1")
	var le *LimitError
	if !errors.As(err, &le) || le.Wait <= 0 {
		t.Errorf("the right password after the flood: %v, want a LimitError", err)
	}
	if us.checks.Load() != before {
		t.Error("a refused login ran a check")
	}
}

// A name no user can have (too long for the store's key, say) is refused
// as a wrong password without reading the store, and counts against the
// address only.
func TestLoginImpossibleName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := openMeta(t)
	us := NewUsers(meta)
	l := NewLimiter(meta, 2, time.Minute)
	for _, name := range []string{strings.Repeat("a", 1100), "UPPER", "a b", "", "ü"} {
		_, err := us.Login(ctx, l, name, "whatever password", "192.0.2.9")
		var le *LimitError
		if !errors.Is(err, ErrBadPassword) && !errors.As(err, &le) {
			t.Errorf("name %.20q: %v, want a wrong password or a limit", name, err)
		}
		if err != nil && strings.Contains(err.Error(), name) && name != "" {
			t.Errorf("the error repeats the name typed: %v", err)
		}
	}
	counts, err := meta.GetCounts(ctx, []string{"addr:192.0.2.9"}, time.Now())
	if err != nil || counts["addr:192.0.2.9"].N != 2 {
		t.Errorf("address count %v %v, want the limit of 2 used", counts, err)
	}
}

// The store's refusals are told apart from storage failures by ErrInvalid
// (the operator API answers them 400), and their text never holds the
// password.
func TestUsersErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := openMeta(t)
	us := NewUsers(meta)
	const pw = "a long enough password"
	if _, err := us.Add(ctx, "bob", pw, false, false); err != nil {
		t.Fatal(err)
	}
	invalid := []struct {
		name string
		err  func() error
	}{
		{"bad name", func() error { _, err := us.Add(ctx, "Bob", pw, false, false); return err }},
		{"long name", func() error { _, err := us.Add(ctx, strings.Repeat("a", 65), pw, false, false); return err }},
		{"short password", func() error { _, err := us.Add(ctx, "carol", "shortsecret", false, false); return err }},
		{"long password", func() error { _, err := us.SetPassword(ctx, "bob", strings.Repeat("p", 73)); return err }},
		{"bad prefix", func() error { _, err := us.GrantAccess(ctx, "bob", "Team", []string{"pull"}); return err }},
		{"bad action", func() error { _, err := us.GrantAccess(ctx, "bob", "team", []string{"fly"}); return err }},
		{"no action", func() error { _, err := us.GrantAccess(ctx, "bob", "team", nil); return err }},
		{"revoke bad action", func() error { _, err := us.Revoke(ctx, "bob", "team", []string{"fly"}); return err }},
	}
	for _, tc := range invalid {
		err := tc.err()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "shortsecret") || strings.Contains(err.Error(), "ppppp")) {
			t.Errorf("%s: error %q holds the password", tc.name, err)
		}
	}
	if _, err := us.Revoke(ctx, "bob", "team", nil); !errors.Is(err, ErrNoGrant) {
		t.Errorf("revoke without a grant: %v, want ErrNoGrant", err)
	}
	if _, err := us.GrantAccess(ctx, "nobody", "team", []string{"pull"}); !errors.Is(err, ErrNoUser) {
		t.Errorf("grant to an unknown user: %v, want ErrNoUser", err)
	}
	if err := us.Delete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := us.Delete(ctx, "bob"); !errors.Is(err, ErrNoUser) {
		t.Errorf("second delete: %v, want ErrNoUser", err)
	}
}

// Merging actions into an existing grant keeps each action once, even when
// the request repeats one (regression: the merge checked a stale copy).
func TestGrantAccessMerge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := openMeta(t)
	us := NewUsers(meta)
	if _, err := us.Add(ctx, "ci", "a long enough password", true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := us.GrantAccess(ctx, "ci", "team", []string{"pull", "pull"}); err != nil {
		t.Fatal(err)
	}
	u, err := us.GrantAccess(ctx, "ci", "team/", []string{"push", "push", "pull"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(u.Grants, []Grant{{Prefix: "team", Actions: []string{"pull", "push"}}}); diff != "" {
		t.Errorf("grants (-got +want):\n%s", diff)
	}
}

// A "*" next to a named action grants each action once.
func TestGrantWildcardOnce(t *testing.T) {
	t.Parallel()
	p := Principal{Name: "ci", Grants: []Grant{{Prefix: "team", Actions: []string{"pull", "push"}}}}
	got := p.Grant([]Scope{{"repository", "team/app", []string{"pull", "*"}}, {"registry", "catalog", []string{"*", "*"}}})
	want := []Scope{{"repository", "team/app", []string{"pull", "push"}}, {"registry", "catalog", []string{"*"}}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("granted (-got +want):\n%s", diff)
	}
}

// The hash an unknown user's login is compared against costs what a real
// one does, so both take as long to refuse.
func TestDummyHashCost(t *testing.T) {
	t.Parallel()
	cost, err := bcrypt.Cost([]byte(dummyHash))
	if err != nil || cost != bcryptCost {
		t.Errorf("dummy hash cost %d (%v), want %d", cost, err, bcryptCost)
	}
}

// TestAuthenticateRemembersSuccess: a password that passed is not
// bcrypt-checked again within verifiedTTL, while a changed password, a
// deleted user and a wrong password are still refused (and failures
// always cost a check).
func TestAuthenticateRemembersSuccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := openMeta(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	us := NewUsers(meta)
	us.now = func() time.Time { return now }
	const pw, pw2 = "a long enough password", "the next long password"
	if _, err := us.Add(ctx, "bob", pw, false, false); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		do        func()
		password  string
		ok        bool
		newChecks int64
	}{
		{"first login checks", nil, pw, true, 1},
		{"second login is remembered", nil, pw, true, 0},
		{"wrong password checks", nil, "wrong password!!", false, 1},
		{"wrong password again checks", nil, "wrong password!!", false, 1},
		{"after the TTL checks again", func() { now = now.Add(verifiedTTL + time.Second) }, pw, true, 1},
		{"password changed: old refused", func() {
			if _, err := us.SetPassword(ctx, "bob", pw2); err != nil {
				t.Fatal(err)
			}
		}, pw, false, 1},
		{"password changed: new accepted", nil, pw2, true, 1},
		{"user deleted: refused", func() {
			if err := us.Delete(ctx, "bob"); err != nil {
				t.Fatal(err)
			}
		}, pw2, false, 1},
		{"user re-added with the same password: checked", func() {
			if _, err := us.Add(ctx, "bob", pw2, false, false); err != nil {
				t.Fatal(err)
			}
		}, pw2, true, 1},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		before := us.checks.Load()
		_, err := us.Authenticate(ctx, "bob", s.password)
		if (err == nil) != s.ok {
			t.Errorf("%s: err = %v, want ok=%v", s.name, err, s.ok)
		}
		if got := us.checks.Load() - before; got != s.newChecks {
			t.Errorf("%s: %d bcrypt checks, want %d", s.name, got, s.newChecks)
		}
	}
}

func TestVerifiedBounded(t *testing.T) {
	t.Parallel()
	v := newVerified()
	now := time.Now()
	for i := range verifiedMax + 100 {
		v.add("u", "h", strconv.Itoa(i), now)
	}
	if n := len(v.at); n > verifiedMax {
		t.Errorf("%d entries, want at most %d", n, verifiedMax)
	}
	if !v.seen("u", "h", strconv.Itoa(verifiedMax+99), now) {
		t.Error("the newest entry was dropped")
	}
	// Distinct triples never share an entry, even when they concatenate
	// to the same text.
	if v.entry("ab", "c", "d") == v.entry("a", "bc", "d") {
		t.Error("entries collide on concatenation")
	}
}

// openMeta opens an embedded metadata store in the test's temp dir.
func openMeta(t *testing.T) *local.MetaStore {
	t.Helper()
	meta, err := local.OpenMetaStore(t.TempDir() + "/m.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return meta
}

// BenchmarkAuthenticate: a Basic login's cost, first (bcrypt) and then
// remembered (one store read and an HMAC).
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	meta, err := local.OpenMetaStore(b.TempDir() + "/m.db")
	if err != nil {
		b.Fatal(err)
	}
	defer meta.Close()
	const pw = "a long enough password"
	for _, tc := range []struct {
		name     string
		remember bool
	}{{"bcrypt", false}, {"remembered", true}} {
		b.Run(tc.name, func(b *testing.B) {
			us := NewUsers(meta)
			if _, err := us.Add(ctx, "u-"+tc.name, pw, false, false); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if !tc.remember {
					us.verified = newVerified()
				}
				if _, err := us.Authenticate(ctx, "u-"+tc.name, pw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A token's credential stamp stays valid while the user and its password
// do: another process's change is seen within CredTTL, this process's own
// at once.
func TestCheckCred(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := openMeta(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	server, other := NewUsers(meta), NewUsers(meta)
	server.now, other.now = clock, clock
	u, err := other.Add(ctx, "carol", "a long enough password", false, false)
	if err != nil {
		t.Fatal(err)
	}
	stamp := u.Cred()
	if err := server.CheckCred(ctx, "carol", stamp); err != nil {
		t.Fatalf("a current stamp: %v", err)
	}
	for _, bad := range []string{"", "not-a-stamp"} {
		if err := server.CheckCred(ctx, "carol", bad); !errors.Is(err, ErrStaleToken) {
			t.Errorf("stamp %q: %v, want ErrStaleToken", bad, err)
		}
	}
	// Another process changes the password: believed until CredTTL ends.
	if _, err := other.SetPassword(ctx, "carol", "another long password"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(CredTTL - time.Second)
	if err := server.CheckCred(ctx, "carol", stamp); err != nil {
		t.Errorf("within CredTTL of another process's change: %v (the cache may be believed)", err)
	}
	now = now.Add(time.Second)
	if err := server.CheckCred(ctx, "carol", stamp); !errors.Is(err, ErrStaleToken) {
		t.Errorf("CredTTL after another process's change: %v, want ErrStaleToken", err)
	}
	// This process's own changes count at once.
	u, _ = server.Get(ctx, "carol")
	stamp = u.Cred()
	if err := server.CheckCred(ctx, "carol", stamp); err != nil {
		t.Fatal(err)
	}
	if err := server.Delete(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := server.CheckCred(ctx, "carol", stamp); !errors.Is(err, ErrStaleToken) {
		t.Errorf("after its own delete: %v, want ErrStaleToken", err)
	}
	now = now.Add(time.Second) // a new creation time
	u2, err := server.Add(ctx, "carol", "another long password", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if u2.Cred() == stamp {
		t.Error("a re-created user has the old user's stamp")
	}
	if err := server.CheckCred(ctx, "carol", stamp); !errors.Is(err, ErrStaleToken) {
		t.Errorf("the old user's stamp after re-creation: %v, want ErrStaleToken", err)
	}
}

func TestParseScopes(t *testing.T) {
	t.Parallel()
	many := func(n int, distinct bool) []string {
		var out []string
		for i := range n {
			name := "a"
			if distinct {
				name = "r" + strconv.Itoa(i)
			}
			out = append(out, "repository:"+name+":pull")
		}
		return out
	}
	tests := []struct {
		name    string
		fields  []string
		want    []Scope
		wantErr bool
	}{
		{"9,000 copies of one scope are one", many(9000, false), []Scope{{"repository", "a", []string{"pull"}}}, false},
		{"repeats merge their actions", []string{"repository:a:pull", "repository:a:push repository:a:pull,delete"},
			[]Scope{{"repository", "a", []string{"pull", "push", "delete"}}}, false},
		{"invalid ones are left out", []string{"nonsense repository:A:pull registry:catalog:*"}, []Scope{{"registry", "catalog", []string{"*"}}}, false},
		{"the cap", many(MaxScopes, true), nil, false},
		{"one over the cap", many(MaxScopes+1, true), nil, true},
	}
	for _, tc := range tests {
		got, err := ParseScopes(tc.fields)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if tc.want != nil {
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("%s (-got +want):\n%s", tc.name, diff)
			}
		}
		if tc.name == "the cap" && len(got) != MaxScopes {
			t.Errorf("%s: %d scopes", tc.name, len(got))
		}
	}
}

// A user holds at most MaxGrants grants (one store item); one more is
// refused as invalid input, and a grant on an existing prefix still merges.
func TestGrantCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	us := NewUsers(openMeta(t))
	if _, err := us.Add(ctx, "many", "a long enough password", false, false); err != nil {
		t.Fatal(err)
	}
	for i := range MaxGrants {
		if _, err := us.GrantAccess(ctx, "many", "p"+strconv.Itoa(i), []string{ActionPull}); err != nil {
			t.Fatalf("grant %d: %v", i+1, err)
		}
	}
	if _, err := us.GrantAccess(ctx, "many", "one-more", []string{ActionPull}); !errors.Is(err, ErrInvalid) {
		t.Errorf("grant %d: %v, want ErrInvalid", MaxGrants+1, err)
	}
	if _, err := us.GrantAccess(ctx, "many", "p0", []string{ActionPush}); err != nil {
		t.Errorf("merging into an existing grant at the cap: %v", err)
	}
}
