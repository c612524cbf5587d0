package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// AuthConfig turns on access control (the Docker/OCI token flow).
type AuthConfig struct {
	Users   *auth.Users
	Issuer  *auth.Issuer
	Limiter *auth.Limiter
	// AnonymousPull lists repository prefixes anyone may pull ("*": all).
	AnonymousPull []string
	// Realm is the absolute token URL in challenges; "" derives it from
	// the request (X-Forwarded-Proto/Host when TrustForwarded, else Host).
	Realm string
	// TrustForwarded believes X-Forwarded-* headers (behind a front door
	// that sets them): the last X-Forwarded-For entry is the client.
	TrustForwarded bool
	// ClientIPHeader, with TrustForwarded, is the header the front door
	// sets to the client's address instead (deploy.ViewerIPHeader in
	// Lambda); without it in a request, the peer address counts.
	ClientIPHeader string
}

// WithAuth turns on authentication and authorization (default: off).
func WithAuth(c AuthConfig) Option { return func(o *options) { o.auth = &c } }

type principalKey struct{}

// principal returns the caller of an authenticated request; with auth off
// everyone may do everything.
func principal(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// need is one permission a request needs.
type need struct{ typ, name, action string }

func (n need) scope() string { return n.typ + ":" + n.name + ":" + n.action }

// what says what n allows, for messages: "pull team/app".
func (n need) what() string {
	switch {
	case n.typ == auth.TypeRegistry && n.name == auth.Admin:
		return "use the operator API (admins only)"
	case n.typ == auth.TypeRegistry:
		return "list the catalog"
	}
	return n.action + " " + n.name
}

// needs says what a request on rt needs; base means "any authenticated
// caller" (the /v2/ version check).
func needs(rt route, method string) (ns []need, base bool) {
	repo := func(action string) []need { return []need{{auth.TypeRepository, rt.repo, action}} }
	switch rt.kind {
	case routeBase:
		return nil, true
	case routeCatalog:
		return []need{{auth.TypeRegistry, auth.Catalog, "*"}}, false
	case routeTags, routeReferrers:
		return repo(auth.ActionPull), false
	case routeManifest, routeBlob:
		switch method {
		case http.MethodPut:
			return repo(auth.ActionPush), false
		case http.MethodDelete:
			return repo(auth.ActionDelete), false
		}
		return repo(auth.ActionPull), false
	case routeUploads, routeUpload:
		return repo(auth.ActionPush), false
	}
	if isOperatorRoute(rt.kind) {
		return []need{{auth.TypeRegistry, auth.Admin, "*"}}, false
	}
	return nil, true
}

// clientAddr is the caller's address for rate limiting and the audit.
func (a *API) clientAddr(r *http.Request) string {
	if c := a.opts.auth; c != nil && c.TrustForwarded {
		if c.ClientIPHeader != "" {
			if ip, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get(c.ClientIPHeader))); err == nil {
				return ip.String()
			}
		} else if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			return strings.TrimSpace(parts[len(parts)-1])
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (a *API) realm(r *http.Request) string {
	c := a.opts.auth
	if c.Realm != "" {
		return c.Realm
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if c.TrustForwarded {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			host = h
		}
	}
	return scheme + "://" + host + deploy.TokenPath
}

// authError is a refused request: its challenge goes in WWW-Authenticate.
type authError struct {
	err       *oci.Error
	challenge string
}

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

func (a *API) challenge(r *http.Request, n *need, errCode string, format string, args ...any) error {
	c := fmt.Sprintf(`Bearer realm=%q,service=%q`, a.realm(r), a.opts.auth.Issuer.Service())
	if n != nil {
		c += fmt.Sprintf(`,scope=%q`, n.scope())
	}
	if errCode != "" {
		c += fmt.Sprintf(`,error=%q`, errCode)
	}
	return &authError{err: oci.Errorf(oci.CodeUnauthorized, format, args...), challenge: c}
}

func tooMany(wait time.Duration) error {
	secs := int(wait.Seconds()) + 1
	return &retryAfter{err: oci.Errorf(oci.CodeTooManyRequests, "too many failed logins; retry in %d seconds", secs), secs: secs}
}

type retryAfter struct {
	err  *oci.Error
	secs int
}

func (e *retryAfter) Error() string { return e.err.Error() }
func (e *retryAfter) Unwrap() error { return e.err }

// authenticate finds who makes r: a bearer token, Basic credentials
// (docker login style), or nobody.
func (a *API) authenticate(r *http.Request) (auth.Principal, error) {
	c := a.opts.auth
	anon := auth.Principal{AnonymousPull: c.AnonymousPull}
	h := r.Header.Get("Authorization")
	switch {
	case h == "":
		return anon, nil
	case len(h) > 7 && strings.EqualFold(h[:7], "bearer "):
		claims, err := c.Issuer.Verify(strings.TrimSpace(h[7:]))
		if err != nil {
			return anon, a.challenge(r, nil, "invalid_token", "the bearer token is invalid or expired; get a new one from the realm")
		}
		// A user's token lasts only while its credential does: a password
		// change or the user's deletion ends it (within auth.CredTTL).
		if claims.Subject != "" {
			err := c.Users.CheckCred(r.Context(), claims.Subject, claims.Cred)
			if errors.Is(err, auth.ErrStaleToken) {
				return anon, a.challenge(r, nil, "invalid_token", "the bearer token was issued to %s before its password changed or the user was removed; log in again", claims.Subject)
			}
			if err != nil {
				return anon, fmt.Errorf("check the token's credentials: %w", err)
			}
		}
		p := claims.Principal()
		p.AnonymousPull = c.AnonymousPull
		return p, nil
	case len(h) > 6 && strings.EqualFold(h[:6], "basic "):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return anon, a.challenge(r, nil, "", "malformed Basic credentials")
		}
		u, err := a.login(r, user, pass)
		if err != nil {
			return anon, err
		}
		p := u.Principal()
		p.AnonymousPull = c.AnonymousPull
		return p, nil
	}
	return anon, a.challenge(r, nil, "", "unsupported Authorization scheme; use Bearer tokens or Basic credentials")
}

// login checks a user name and password, limited per user and per
// source address (auth.Limiter: attempts are reserved in the store before
// the check, shared by every process on it). Credentials, and names no
// user can have, never reach a log line.
func (a *API) login(r *http.Request, user, pass string) (auth.User, error) {
	c := a.opts.auth
	u, err := c.Users.Login(r.Context(), c.Limiter, user, pass, a.clientAddr(r))
	var limited *auth.LimitError
	switch {
	case errors.As(err, &limited):
		return auth.User{}, tooMany(limited.Wait)
	case errors.Is(err, auth.ErrBadPassword):
		return auth.User{}, a.challenge(r, nil, "", "wrong user name or password")
	case err != nil:
		return auth.User{}, fmt.Errorf("authenticate: %w", err)
	}
	return u, nil
}

// authorize checks that p may make the request on rt: 401 with a
// challenge naming the scope for callers who may get a better token,
// 403 DENIED for a user who authenticated directly and lacks the grant.
func (a *API) authorize(r *http.Request, rt route, p auth.Principal) error {
	ns, base := needs(rt, r.Method)
	if base {
		if p.Anonymous() {
			return a.challenge(r, nil, "", "authentication required")
		}
		return nil
	}
	for _, n := range ns {
		if p.Allows(n.typ, n.name, n.action) {
			continue
		}
		switch {
		case p.Anonymous():
			return a.challenge(r, &n, "", "authentication required to %s", n.what())
		case p.Token:
			return a.challenge(r, &n, "insufficient_scope", "the token does not grant %s", n.scope())
		}
		if n.typ == auth.TypeRegistry && n.name == auth.Admin {
			return oci.Errorf(oci.CodeDenied, "user %s is not an admin; the operator API (/v2/_skiff/) needs the admin role", p.Name)
		}
		return oci.Errorf(oci.CodeDenied, "user %s may not %s %s", p.Name, n.action, n.name)
	}
	return nil
}

// token answers the token endpoint (GET with Basic credentials, or POST
// with an OAuth2 password grant form): a token for the subset of the
// requested scopes the caller may have.
func (a *API) token(w http.ResponseWriter, r *http.Request) error {
	c := a.opts.auth
	var user, pass string
	var scopes []string
	switch r.Method {
	case http.MethodGet:
		scopes = r.URL.Query()["scope"]
		if u, p, ok := r.BasicAuth(); ok {
			user, pass = u, p
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return oci.Errorf(oci.CodeUnsupported, "the token request form could not be read").WithStatus(http.StatusBadRequest)
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			return oci.Errorf(oci.CodeUnsupported, "grant_type %q is not supported; use password", gt).WithStatus(http.StatusBadRequest)
		}
		user, pass = r.PostForm.Get("username"), r.PostForm.Get("password")
		scopes = []string{r.PostForm.Get("scope")}
	default:
		w.Header().Set("Allow", "GET, POST")
		return oci.Errorf(oci.CodeUnsupported, "method %s is not supported on the token endpoint", r.Method).WithStatus(http.StatusMethodNotAllowed)
	}
	// Checked before the login: a refused request costs no attempt.
	requested, err := auth.ParseScopes(scopes)
	if err != nil {
		return oci.Errorf(oci.CodeUnsupported, "%s (repeats of one count once); ask for fewer at a time", err.Error()).WithStatus(http.StatusBadRequest)
	}
	p := auth.Principal{AnonymousPull: c.AnonymousPull}
	cred := ""
	if user != "" {
		u, err := a.login(r, user, pass)
		if err != nil {
			return err
		}
		p, cred = u.Principal(), u.Cred()
		p.AnonymousPull = c.AnonymousPull
	}
	granted := p.Grant(requested)
	tok, expires, issued, err := c.Issuer.Issue(p.Name, cred, granted)
	if err != nil {
		return err
	}
	requestInfo(r.Context()).user = p.Name
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, "application/json", map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   expires,
		"issued_at":    issued.Format(time.RFC3339),
	})
	return nil
}

// pullable returns which repositories the caller may see in the catalog:
// those it may pull (nil: all, with auth off). A token carries only its
// granted scopes, so the user's own grants are read (one store read per
// catalog page).
func (a *API) pullable(r *http.Request) (func(string) bool, error) {
	p, ok := principal(r.Context())
	if !ok {
		return nil, nil
	}
	if p.Token && p.Name != "" {
		u, err := a.opts.auth.Users.Get(r.Context(), p.Name)
		if errors.Is(err, auth.ErrNoUser) {
			return func(string) bool { return false }, nil
		}
		if err != nil {
			return nil, err
		}
		anon := p.AnonymousPull
		p = u.Principal()
		p.AnonymousPull = anon
	}
	return p.CanPull, nil
}

// mayMount reports whether the caller may mount a blob from repository
// from: that needs pull there. Without a source, a mount would look the
// blob up in every repository, so with auth on it is refused (the client
// falls back to an upload, as the spec allows).
func (a *API) mayMount(r *http.Request, from string) bool {
	p, ok := principal(r.Context())
	if !ok {
		return true
	}
	if from == "" {
		return false
	}
	if p.Token && p.Name != "" {
		u, err := a.opts.auth.Users.Get(r.Context(), p.Name)
		if err != nil {
			return false
		}
		anon := p.AnonymousPull
		p = u.Principal()
		p.AnonymousPull = anon
	}
	return p.CanPull(from)
}
