package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/auth"
)

// useExternal is startRegistry with SKIFF_IT_REGISTRY: no process, the
// registry already running there, with SKIFF_IT_USER as the harness admin
// when set (the registry must then authenticate). The test's repositories
// live under a prefix of its own (repo). extra are the `skiff serve` flags
// the test wants: one the registry is seen to honour is accepted, any other
// fails the test, which does not apply to an external registry.
func useExternal(t *testing.T, extra ...string) *registry {
	t.Helper()
	r := &registry{
		t:        t,
		host:     external.host,
		log:      &logBuffer{}, // stays empty: the server's log is not ours
		external: true,
		prefix:   "it-" + randomName() + "/",
	}
	if external.user != "" {
		r.auth, r.adminUser, r.adminPwd = true, external.user, external.password
		r.tokens = &tokenCache{host: r.host}
	}
	t.Logf("registry under test: %s (SKIFF_IT_REGISTRY), repositories under %s", r.host, r.prefix)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the registry's log is not the harness's: look for %s in the logs of %s", r.prefix, r.host)
		}
	})

	anon := send(t, http.MethodGet, r.url("/v2/"), nil, nil)
	switch {
	case r.auth && (anon.status != http.StatusUnauthorized || !strings.HasPrefix(anon.header.Get("WWW-Authenticate"), "Bearer ")):
		t.Fatalf("SKIFF_IT_USER is set, so %s must authenticate: anonymous GET /v2/: want 401 with a Bearer challenge, got %s", r.host, anon)
	case !r.auth && anon.status != http.StatusOK:
		t.Fatalf("SKIFF_IT_USER is not set, so %s must let anyone in: GET /v2/: want 200, got %s", r.host, anon)
	}
	if r.auth {
		if resp := send(t, http.MethodGet, r.url("/v2/"), r.basicAdmin(), nil); resp.status != http.StatusOK {
			t.Fatalf("GET /v2/ as %s (SKIFF_IT_USER): want 200, got %s", r.adminUser, resp)
		}
	}
	for _, flag := range extra {
		switch flag {
		case "--operator-api":
			// Seen, not assumed: the admin lists the policies.
			resp := send(t, http.MethodGet, r.url("/v2/_skiff/policies"),
				r.authedFor(nil, auth.Scope{Type: auth.TypeRegistry, Name: auth.Admin, Actions: []string{"*"}}), nil)
			if resp.status != http.StatusOK {
				t.Fatalf("the test needs the operator API (skiff serve --operator-api): GET %s/v2/_skiff/policies as the admin: want 200, got %s", r.host, resp)
			}
		default:
			notApplicable(t, "it needs `skiff serve "+flag+"`, which an external registry can't be given")
		}
	}
	return r
}

// useExternalAuth is startAuthRegistry with SKIFF_IT_REGISTRY: the users
// are created with `skiff user add --registry` (the operator API, as the
// admin), named it-<the test's random part>-<name> with their grant
// prefixes under the test's repository prefix, and deleted at the end.
func useExternalAuth(t *testing.T, users []*authUser, extra ...string) *registry {
	t.Helper()
	if external.user == "" {
		notApplicable(t, "it creates users, and the registry has no authentication (no SKIFF_IT_USER)")
	}
	r := useExternal(t, extra...)
	namePrefix := strings.TrimSuffix(r.prefix, "/") + "-"
	for _, u := range users {
		u.name = namePrefix + u.name
		for i, g := range u.grants {
			if g.prefix == "*" {
				t.Fatalf("harness: a grant on every repository (*) can't be kept inside the test's prefix %s", r.prefix)
			}
			u.grants[i].prefix = r.repo(g.prefix)
		}
	}
	target := "--registry=http://" + r.host
	for _, u := range users {
		add := []string{"user", "add", u.name, "--password-stdin", target}
		if u.admin {
			add = append(add, "--admin")
		}
		r.skiffCommand(u.password+"\n", add...)
		name := u.name
		t.Cleanup(func() {
			if _, err := r.skiffRun("", "user", "delete", name, target); err != nil {
				t.Errorf("harness: delete user %s from %s: %v", name, r.host, err)
			}
		})
		for _, g := range u.grants {
			r.skiffCommand("", "user", "grant", u.name, g.prefix, "--actions="+g.actions, target)
		}
	}
	return r
}

// requireOwnServer skips a test that needs a server process of its own
// (why says what for) when the tests target SKIFF_IT_REGISTRY, and says so
// (notApplicable): test/lambda runs every test against
// an external registry and fails on any other skip.
func requireOwnServer(t *testing.T, why string) {
	t.Helper()
	if external != nil {
		notApplicable(t, "it needs a server process of its own ("+why+")")
	}
}

// notApplicable skips t, which cannot run against SKIFF_IT_REGISTRY, and
// appends its name to the file SKIFF_IT_NOT_APPLICABLE names (when set), so
// the runner tells these skips from the ones that must fail it.
func notApplicable(t *testing.T, why string) {
	t.Helper()
	if path := os.Getenv("SKIFF_IT_NOT_APPLICABLE"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("record %s as not applicable: %v", t.Name(), err)
		}
		// One short line per write: appends of it don't interleave.
		_, err = fmt.Fprintln(f, t.Name())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("record %s as not applicable: %v", t.Name(), err)
		}
	}
	t.Skipf("does not apply to SKIFF_IT_REGISTRY=%s: %s", external.host, why)
}

// tokenCache gets tokens from a registry's token endpoint as a client does:
// the realm and service of the Bearer challenge an anonymous GET /v2/
// gets, then GET realm?service=...&scope=... with Basic credentials.
// Tokens are kept until shortly before they expire: every token costs the
// registry a bcrypt check.
type tokenCache struct {
	host string

	mu             sync.Mutex
	realm, service string
	tokens         map[string]cachedToken // by user and scope
}

type cachedToken struct {
	token   string
	expires time.Time
}

// get returns a token for user with scope, from the cache or the registry.
func (c *tokenCache) get(user, password string, scope auth.Scope) (string, error) {
	key := user + " " + scope.String()
	c.mu.Lock()
	if tok, ok := c.tokens[key]; ok && time.Now().Before(tok.expires) {
		c.mu.Unlock()
		return tok.token, nil
	}
	c.mu.Unlock()
	tok, expiresIn, err := c.fetch(user, password, scope)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		c.tokens = map[string]cachedToken{}
	}
	// A margin for the requests made with it and the clocks' difference.
	c.tokens[key] = cachedToken{token: tok, expires: time.Now().Add(time.Duration(expiresIn)*time.Second - 30*time.Second)}
	return tok, nil
}

// challengeParamRE matches one auth-param of a WWW-Authenticate challenge.
var challengeParamRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// fetch asks the token endpoint for a token; no user means an anonymous one.
func (c *tokenCache) fetch(user, password string, scopes ...auth.Scope) (token string, expiresIn int, err error) {
	realm, service, err := c.challenge()
	if err != nil {
		return "", 0, err
	}
	q := url.Values{"service": {service}}
	for _, s := range scopes {
		q.Add("scope", s.String())
	}
	h := http.Header{}
	if user != "" {
		req := http.Request{Header: h}
		req.SetBasicAuth(user, password)
	}
	resp, err := trySend(http.MethodGet, realm+"?"+q.Encode(), h, nil)
	if err != nil {
		return "", 0, fmt.Errorf("token for %s %v: %w", user, scopes, err)
	}
	var body struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in"`
	}
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &body) != nil || body.Token == "" {
		return "", 0, fmt.Errorf("token for %s %v from %s: want 200 and a token, got %s", user, scopes, realm, resp)
	}
	if body.ExpiresIn <= 0 {
		body.ExpiresIn = 60 // the spec's default
	}
	return body.Token, body.ExpiresIn, nil
}

// challenge returns the realm and service of the registry's challenge.
func (c *tokenCache) challenge() (realm, service string, err error) {
	c.mu.Lock()
	realm, service = c.realm, c.service
	c.mu.Unlock()
	if realm != "" {
		return realm, service, nil
	}
	resp, err := trySend(http.MethodGet, "http://"+c.host+"/v2/", nil, nil)
	if err != nil {
		return "", "", err
	}
	ch := resp.header.Get("WWW-Authenticate")
	if resp.status != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer ") {
		return "", "", fmt.Errorf("anonymous GET /v2/ of %s: want 401 with a Bearer challenge, got %s", c.host, resp)
	}
	for _, m := range challengeParamRE.FindAllStringSubmatch(ch, -1) {
		switch m[1] {
		case "realm":
			realm = m[2]
		case "service":
			service = m[2]
		}
	}
	if realm == "" {
		return "", "", fmt.Errorf("the challenge of %s names no realm: %s", c.host, ch)
	}
	c.mu.Lock()
	c.realm, c.service = realm, service
	c.mu.Unlock()
	return realm, service, nil
}

// clientCredentials gives the clients of tb the harness admin's
// credentials for hosts (the registry, or a proxy in front of it), where
// they look for them after a login: $DOCKER_CONFIG/config.json (crane,
// regctl, oras, cosign) and $REGISTRY_AUTH_FILE (skopeo, podman). Nothing
// when the registry has no auth. TestClientLogin tests the clients' own
// logins.
func (r *registry) clientCredentials(tb *toolbox, hosts ...string) {
	tb.t.Helper()
	if !r.auth {
		return
	}
	for _, h := range hosts {
		tb.storeCredentials(h, r.adminUser, r.adminPwd)
	}
}
