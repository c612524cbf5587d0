package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/server"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/internal/testenv"
	"github.com/skiff-registry/skiff/pkg/oci"
)

var updateMatrix = flag.Bool("update", false, "rewrite the authorization matrix in docs/auth.md from authzMatrix")

// The authorization matrix: what each kind of caller gets for each
// operation, on a server with authentication on, the operator API on and
// anonymous pull allowed under "public". Users: "puller" may pull team/,
// "pusher" may pull and push team/, "admin" is an admin. A cell is the
// status and, for errors, the envelope's code (a HEAD answer has no body:
// there the challenge header is checked instead).
//
// Token callers get a token from the token endpoint with the scopes a
// client asks for that operation (authzOps' scopes). The README's table is
// generated from this one (go test -run TestMatrixDoc -update).
var authzMatrix = []struct {
	caller string
	cells  []string // one per authzOps entry, in order
	// catalog is what a 200 catalog lists for the caller.
	catalog []string
}{
	// Columns (authzOps): GET /v2/, catalog, pull team/app, pull public/base, HEAD blob team/app,
	// start upload team/app, push team/app, push other/app, delete manifest team/app,
	// delete blob team/app, mount other/app → team/app, set policy, list users.
	{callerAnonymous, []string{u401, u401, u401, "200", u401, u401, u401, u401, u401, u401, u401, u401, u401}, nil},
	{callerAnonToken, []string{"200", u401, u401, "200", u401, u401, u401, u401, u401, u401, u401, u401, u401}, nil},
	{callerPullBasic, []string{"200", "200", "200", "200", "200", d403, d403, d403, d403, d403, d403, d403, d403}, []string{"public/base", "team/app"}},
	{callerPullToken, []string{"200", "200", "200", "200", "200", u401, u401, u401, u401, u401, u401, u401, u401}, []string{"public/base", "team/app"}},
	{callerPushBasic, []string{"200", "200", "200", "200", "200", "202", "201", d403, d403, d403, "202", d403, d403}, []string{"public/base", "team/app"}},
	{callerPushToken, []string{"200", "200", "200", "200", "200", "202", "201", u401, u401, u401, "202", u401, u401}, []string{"public/base", "team/app"}},
	{callerAdminBasic, []string{"200", "200", "200", "200", "200", "202", "201", "201", "202", "202", "201", "200", "200"}, []string{"other/app", "public/base", "team/app"}},
	{callerAdminToken, []string{"200", "200", "200", "200", "200", "202", "201", "201", "202", "202", "201", "200", "200"}, []string{"other/app", "public/base", "team/app"}},
	{callerOtherRepo, []string{"200", u401, u401, "200", u401, u401, u401, u401, u401, u401, u401, u401, u401}, nil},
	{callerExpired, []string{u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401}, nil},
	{callerTampered, []string{u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401}, nil},
	{callerOtherKey, []string{u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401}, nil},
	{callerAlgNone, []string{u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401, u401}, nil},
}

// Error cells of the matrix.
const (
	u401 = "401 UNAUTHORIZED"
	d403 = "403 DENIED"
)

// Callers of the matrix.
const (
	callerAnonymous  = "anonymous"
	callerAnonToken  = "anonymous token"
	callerPullBasic  = "pull user (team/), Basic"
	callerPullToken  = "pull user (team/), token"
	callerPushBasic  = "push user (team/), Basic"
	callerPushToken  = "push user (team/), token"
	callerAdminBasic = "admin, Basic"
	callerAdminToken = "admin, token"
	callerOtherRepo  = "push user's token for another repository (team/lib)"
	callerExpired    = "expired admin token"
	callerTampered   = "tampered token (push user's, claims rewritten to admin)"
	callerOtherKey   = "admin token signed with another key"
	callerAlgNone    = `unsigned admin token (alg "none")`
)

// Passwords of the seeded users (they must not appear in any log).
const (
	pullerPassword = "puller-secret-Q7xv2LmR"
	pusherPassword = "pusher-secret-K3wz9NpT"
	adminPassword  = "admin-secret-H5tb8RcY"
)

// The matrix's server: its URL, wiring and stores.
type world struct {
	url    string
	srv    *server.Server
	meta   storage.MetaStore // unwrapped, for the test's own reads and seeding
	writes *atomic.Int64     // store writes made through the server
	key    []byte
	fx     fixture
	log    *syncBuffer
	secret *secrets
}

// fixture is the content every world starts with.
type fixture struct {
	teamManifest, publicManifest, otherManifest, doomedManifest []byte
	teamConfig, mountable, doomedBlob                           digest.Digest
	doomedBlobBytes                                             []byte
	manifests, blobs                                            []digest.Digest
}

// syncBuffer collects log lines from concurrent servers.
type syncBuffer = testenv.Buffer

// secrets collects every credential a test sends or receives, to prove
// that none reaches the log.
type secrets struct {
	mu   sync.Mutex
	vals map[string]bool
}

func (s *secrets) add(vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals == nil {
		s.vals = map[string]bool{}
	}
	for _, v := range vals {
		if v != "" {
			s.vals[v] = true
		}
	}
}

// addAuthorization records an Authorization header value and its parts.
func (s *secrets) addAuthorization(h string) {
	s.add(h)
	if _, cred, ok := strings.Cut(h, " "); ok {
		s.add(cred)
		if parts := strings.Split(cred, "."); len(parts) == 3 && len(parts[2]) > 8 {
			s.add(parts[2]) // a token's signature alone
		}
	}
}

// checkLog fails t if log holds any secret, or holds nothing at all.
func (s *secrets) checkLog(t *testing.T, log string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.Contains(log, `"msg":"request"`) {
		t.Fatalf("the log captured no request lines:\n%s", log)
	}
	if len(s.vals) == 0 {
		t.Fatal("no secrets were collected")
	}
	for v := range s.vals {
		if strings.Contains(log, v) {
			t.Errorf("the log holds a secret (%d bytes, starting %q)", len(v), v[:min(len(v), 6)])
		}
	}
	for _, word := range []string{"Authorization", "Bearer ", "Basic ", "$2a$"} {
		if strings.Contains(log, word) {
			t.Errorf("the log mentions %q", word)
		}
	}
}

// countingMeta counts the writes made through a MetaStore.
type countingMeta struct {
	storage.MetaStore
	n *atomic.Int64
}

func (m countingMeta) PutBlob(ctx context.Context, repo string, b storage.Blob) error {
	m.n.Add(1)
	return m.MetaStore.PutBlob(ctx, repo, b)
}

func (m countingMeta) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	m.n.Add(1)
	return m.MetaStore.DeleteBlob(ctx, repo, d)
}

func (m countingMeta) PutManifest(ctx context.Context, repo string, mf storage.Manifest) error {
	m.n.Add(1)
	return m.MetaStore.PutManifest(ctx, repo, mf)
}

func (m countingMeta) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	m.n.Add(1)
	return m.MetaStore.DeleteManifest(ctx, repo, d)
}

func (m countingMeta) PutTag(ctx context.Context, repo string, tag storage.Tag) error {
	m.n.Add(1)
	return m.MetaStore.PutTag(ctx, repo, tag)
}

func (m countingMeta) DeleteTag(ctx context.Context, repo, name string) error {
	m.n.Add(1)
	return m.MetaStore.DeleteTag(ctx, repo, name)
}

func (m countingMeta) PutReferrer(ctx context.Context, repo string, subject digest.Digest, r storage.Referrer) error {
	m.n.Add(1)
	return m.MetaStore.PutReferrer(ctx, repo, subject, r)
}

func (m countingMeta) DeleteReferrer(ctx context.Context, repo string, subject, r digest.Digest) error {
	m.n.Add(1)
	return m.MetaStore.DeleteReferrer(ctx, repo, subject, r)
}

func (m countingMeta) PutAbsent(ctx context.Context, repo string, child digest.Digest, a storage.Absent) error {
	m.n.Add(1)
	return m.MetaStore.PutAbsent(ctx, repo, child, a)
}

func (m countingMeta) PutRepository(ctx context.Context, repo string) error {
	m.n.Add(1)
	return m.MetaStore.PutRepository(ctx, repo)
}

func (m countingMeta) CreateUpload(ctx context.Context, u storage.Upload) error {
	m.n.Add(1)
	return m.MetaStore.CreateUpload(ctx, u)
}

func (m countingMeta) UpdateUpload(ctx context.Context, u storage.Upload, prev int64) error {
	m.n.Add(1)
	return m.MetaStore.UpdateUpload(ctx, u, prev)
}

func (m countingMeta) PutSetting(ctx context.Context, s storage.Setting, prev int64) error {
	m.n.Add(1)
	return m.MetaStore.PutSetting(ctx, s, prev)
}

func (m countingMeta) DeleteSetting(ctx context.Context, key string, prev int64) error {
	m.n.Add(1)
	return m.MetaStore.DeleteSetting(ctx, key, prev)
}

// countingBlobs counts the writes made through a BlobStore.
type countingBlobs struct {
	storage.BlobStore
	n *atomic.Int64
}

func (b countingBlobs) Put(ctx context.Context, key string, size int64, expect digest.Digest, r io.Reader) error {
	b.n.Add(1)
	return b.BlobStore.Put(ctx, key, size, expect, r)
}

func (b countingBlobs) Delete(ctx context.Context, key string) error {
	b.n.Add(1)
	return b.BlobStore.Delete(ctx, key)
}

func (b countingBlobs) CreateMultipart(ctx context.Context, key string) (string, error) {
	b.n.Add(1)
	return b.BlobStore.CreateMultipart(ctx, key)
}

func (b countingBlobs) UploadPart(ctx context.Context, key, id string, n int, size int64, r io.Reader) (storage.Part, error) {
	b.n.Add(1)
	return b.BlobStore.UploadPart(ctx, key, id, n, size, r)
}

func (b countingBlobs) CompleteMultipart(ctx context.Context, key, id string, parts []storage.Part) error {
	b.n.Add(1)
	return b.BlobStore.CompleteMultipart(ctx, key, id, parts)
}

func (b countingBlobs) AbortMultipart(ctx context.Context, key, id string) error {
	b.n.Add(1)
	return b.BlobStore.AbortMultipart(ctx, key, id)
}

// newWorld starts a server wired by server.New, as `skiff serve --auth
// --operator-api --anonymous-pull=public` wires it (the production
// failed-login limit included), seeded with users and content.
func newWorld(t *testing.T, log *syncBuffer, sec *secrets, tweak ...func(*config.Config)) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	key := []byte(strings.Repeat("0123456789abcdef", 4))
	if err := os.WriteFile(filepath.Join(dir, "token.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	blobs, err := local.NewBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := local.OpenMetaStore(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Auth, cfg.OperatorAPI = true, true
	cfg.AnonymousPull = []string{"public"}
	cfg.TokenKeyFile = filepath.Join(dir, "token.key")
	for _, f := range tweak {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	writes := &atomic.Int64{}
	stores := backend.Stores{Blobs: countingBlobs{blobs, writes}, Meta: countingMeta{meta, writes}, Close: meta.Close, Exclusive: true}
	logger := slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(ctx, cfg, stores, httpapi.GroupAll, logger)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler)
	t.Cleanup(hs.Close)
	w := &world{url: hs.URL, srv: srv, meta: meta, writes: writes, key: key, log: log, secret: sec}
	sec.add(pullerPassword, pusherPassword, adminPassword)
	w.seedUser(t, "puller", pullerPassword, false, auth.Grant{Prefix: "team", Actions: []string{"pull"}})
	w.seedUser(t, "pusher", pusherPassword, false, auth.Grant{Prefix: "team", Actions: []string{"pull", "push"}})
	w.seedUser(t, "admin", adminPassword, true)
	w.seedContent(t)
	return w
}

// seedUser stores a user the way auth.Users does (auth.User as JSON under
// user/<name>, the layout the auth package documents), but with a bcrypt
// hash at the minimum cost: at the default cost every login takes about
// 0.7 s under the race detector, and the matrix makes over a hundred.
func (w *world) seedUser(t *testing.T, name, password string, admin bool, grants ...auth.Grant) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	b, err := json.Marshal(auth.User{Name: name, Hash: string(hash), Admin: admin, Grants: grants, Created: now, Updated: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.meta.PutSetting(context.Background(), storage.Setting{Key: "user/" + name, Value: b}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.srv.Users.Authenticate(context.Background(), name, password); err != nil {
		t.Fatalf("seeded user %s does not authenticate: %v", name, err)
	}
}

func (w *world) putBlob(t *testing.T, repo string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	if _, err := w.srv.Registry.PutBlob(context.Background(), repo, d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return d
}

func (w *world) putManifest(t *testing.T, repo, ref string, body []byte) {
	t.Helper()
	r, err := oci.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.srv.Registry.PutManifest(context.Background(), repo, r, oci.MediaTypeImageManifest, body, nil); err != nil {
		t.Fatal(err)
	}
}

// seedContent pushes, through the registry core (no HTTP, no auth), an
// image to team/app, public/base and other/app, plus a manifest and a blob
// in team/app that exist to be deleted.
func (w *world) seedContent(t *testing.T) {
	t.Helper()
	image := func(repo, name string) ([]byte, digest.Digest, digest.Digest) {
		cfg, layer := []byte(`{"`+name+`":"config"}`), []byte(name+" layer")
		c, l := w.putBlob(t, repo, cfg), w.putBlob(t, repo, layer)
		m := imageManifest(t, cfg, layer)
		w.putManifest(t, repo, "v1", m)
		return m, c, l
	}
	fx := &w.fx
	fx.teamManifest, fx.teamConfig, _ = image("team/app", "team")
	fx.publicManifest, _, _ = image("public/base", "public")
	fx.otherManifest, _, fx.mountable = image("other/app", "other")
	doomedLayer := []byte("doomed layer")
	w.putBlob(t, "team/app", doomedLayer)
	fx.doomedManifest = imageManifest(t, []byte(`{"team":"config"}`), doomedLayer)
	fx.doomedBlobBytes = []byte("doomed blob")
	fx.doomedBlob = digest.FromBytes(fx.doomedBlobBytes)
	w.restoreDoomed(t)
	for _, m := range [][]byte{fx.teamManifest, fx.publicManifest, fx.otherManifest, fx.doomedManifest} {
		fx.manifests = append(fx.manifests, digest.FromBytes(m))
	}
	fx.blobs = []digest.Digest{fx.teamConfig, fx.mountable, fx.doomedBlob, digest.FromBytes(doomedLayer)}
}

// restoreDoomed puts back what the delete operations delete.
func (w *world) restoreDoomed(t *testing.T) {
	t.Helper()
	w.putManifest(t, "team/app", digest.FromBytes(w.fx.doomedManifest).String(), w.fx.doomedManifest)
	w.putBlob(t, "team/app", w.fx.doomedBlobBytes)
}

// snapshot is what the store holds, as far as a refused request could
// have changed it.
type snapshot struct {
	Repos     []string
	Tags      map[string][]storage.Tag
	Manifests map[string][]digest.Digest
	Blobs     map[string][]digest.Digest
	Policies  string
	Users     string
}

func (w *world) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{Tags: map[string][]storage.Tag{}, Manifests: map[string][]digest.Digest{}, Blobs: map[string][]digest.Digest{}}
	repos, err := w.meta.ListRepositories(ctx, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	s.Repos = repos
	for _, repo := range append(repos, "team/app", "other/app", "public/base") {
		tags, err := w.meta.ListTags(ctx, repo, storage.Page{})
		if err != nil {
			t.Fatal(err)
		}
		s.Tags[repo] = tags
		ms, err := w.meta.GetManifests(ctx, repo, w.fx.manifests)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := w.meta.GetBlobs(ctx, repo, w.fx.blobs)
		if err != nil {
			t.Fatal(err)
		}
		for d := range ms {
			s.Manifests[repo] = append(s.Manifests[repo], d)
		}
		for d := range bs {
			s.Blobs[repo] = append(s.Blobs[repo], d)
		}
		slices.Sort(s.Manifests[repo])
		slices.Sort(s.Blobs[repo])
	}
	policies, err := w.srv.Policies.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	users, err := w.srv.Users.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(policies)
	uj, _ := json.Marshal(users)
	s.Policies, s.Users = string(pj), string(uj)
	return s
}

// send makes one request with an Authorization header value (may be "").
func (w *world) send(t *testing.T, method, path string, body []byte, header map[string]string, authorization string) response {
	t.Helper()
	h := map[string]string{}
	for k, v := range header {
		h[k] = v
	}
	if authorization != "" {
		h["Authorization"] = authorization
		w.secret.addAuthorization(authorization)
	}
	return do(t, method, w.url+path, body, h)
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// token gets a token from the token endpoint the way a client does: GET
// with Basic credentials (none for an anonymous token) and the scopes.
func (w *world) token(t *testing.T, user, password string, scopes []string) string {
	t.Helper()
	q := url.Values{"service": {"skiff"}}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	authz := ""
	if user != "" {
		authz = basic(user, password)
	}
	r := w.send(t, "GET", deploy.TokenPath+"?"+q.Encode(), nil, nil, authz)
	if r.status != http.StatusOK {
		t.Fatalf("token for %q: %d %s", user, r.status, r.body)
	}
	var out struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || out.Token == "" || out.Token != out.AccessToken {
		t.Fatalf("token answer %s: %v", r.body, err)
	}
	w.secret.add(out.Token)
	return out.Token
}

// forge signs claims for subject with the scopes, valid from iat to exp,
// with key (nil: unsigned, alg "none").
func (w *world) forge(t *testing.T, key []byte, subject string, scopes []string, iat, exp time.Time) string {
	t.Helper()
	c := auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "skiff", Subject: subject, Audience: jwt.ClaimStrings{"skiff"},
			IssuedAt: jwt.NewNumericDate(iat), NotBefore: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Access: parseScopes(t, scopes),
	}
	var (
		tok string
		err error
	)
	if key == nil {
		tok, err = jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	} else {
		tok, err = jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.secret.add(tok)
	return tok
}

func parseScopes(t *testing.T, scopes []string) []auth.Scope {
	t.Helper()
	out := []auth.Scope{}
	for _, s := range scopes {
		for _, f := range strings.Fields(s) {
			sc, err := auth.ParseScope(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sc)
		}
	}
	return out
}

// tokenClaims decodes a token's claims without verifying it: what a
// client could read.
func tokenClaims(t *testing.T, tok string) auth.Claims {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c auth.Claims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("claims %s: %v", b, err)
	}
	return c
}

// adminScopes is what the forged tokens claim besides the operation's
// own scopes: everything.
var adminScopes = []string{"registry:admin:*", "registry:catalog:*", "repository:team/app:pull,push,delete", "repository:other/app:pull,push,delete"}

// authorization returns the Authorization value caller sends for an
// operation asking scopes.
func (w *world) authorization(t *testing.T, caller string, scopes []string) string {
	t.Helper()
	now := time.Now()
	switch caller {
	case callerAnonymous:
		return ""
	case callerAnonToken:
		return "Bearer " + w.token(t, "", "", scopes)
	case callerPullBasic:
		return basic("puller", pullerPassword)
	case callerPullToken:
		return "Bearer " + w.token(t, "puller", pullerPassword, scopes)
	case callerPushBasic:
		return basic("pusher", pusherPassword)
	case callerPushToken:
		return "Bearer " + w.token(t, "pusher", pusherPassword, scopes)
	case callerAdminBasic:
		return basic("admin", adminPassword)
	case callerAdminToken:
		return "Bearer " + w.token(t, "admin", adminPassword, scopes)
	case callerOtherRepo:
		return "Bearer " + w.token(t, "pusher", pusherPassword, []string{"repository:team/lib:pull,push,delete"})
	case callerExpired:
		return "Bearer " + w.forge(t, w.key, "admin", append(scopes, adminScopes...), now.Add(-10*time.Minute), now.Add(-time.Minute))
	case callerTampered:
		// A genuine token with its claims replaced and its signature kept.
		tok := w.token(t, "pusher", pusherPassword, scopes)
		parts := strings.Split(tok, ".")
		c := tokenClaims(t, tok)
		c.Subject, c.Access = "admin", parseScopes(t, append(scopes, adminScopes...))
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
		w.secret.add(forged)
		return "Bearer " + forged
	case callerOtherKey:
		return "Bearer " + w.forge(t, []byte(strings.Repeat("another key! ", 4)), "admin", append(scopes, adminScopes...), now, now.Add(5*time.Minute))
	case callerAlgNone:
		return "Bearer " + w.forge(t, nil, "admin", append(scopes, adminScopes...), now, now.Add(5*time.Minute))
	}
	t.Fatalf("unknown caller %q", caller)
	return ""
}

// challengeError is the error a 401's challenge must name for caller:
// a token that does not verify is invalid_token, a valid one that lacks
// the scope insufficient_scope, and a caller without a token neither.
func challengeError(caller string) string {
	switch caller {
	case callerAnonymous, callerPullBasic, callerPushBasic, callerAdminBasic:
		return ""
	case callerExpired, callerTampered, callerOtherKey, callerAlgNone:
		return "invalid_token"
	}
	return "insufficient_scope"
}

// authzOp is one operation of the matrix: its request, the scopes a
// client asks a token for, what to put back first, and what a success
// must have done.
type authzOp struct {
	name    string
	scopes  []string
	request func(w *world) (method, path string, body []byte, header map[string]string)
	setup   func(t *testing.T, w *world)
	check   func(t *testing.T, w *world, r response, catalog []string)
	// writes says a success writes to the store (which proves the write
	// counter that refusals are checked with counts).
	writes bool
}

const (
	teamScope  = "repository:team/app:pull,push"
	adminScope = "registry:admin:*"
)

var manifestAccept = map[string]string{"Accept": oci.MediaTypeImageManifest}
var manifestType = map[string]string{"Content-Type": oci.MediaTypeImageManifest}

// authzOps are the matrix's columns, in order.
var authzOps = []authzOp{
	{
		name:    "GET /v2/",
		request: func(*world) (string, string, []byte, map[string]string) { return "GET", "/v2/", nil, nil },
	},
	{
		name:    "GET /v2/_catalog",
		scopes:  []string{"registry:catalog:*"},
		request: func(*world) (string, string, []byte, map[string]string) { return "GET", "/v2/_catalog", nil, nil },
		check: func(t *testing.T, _ *world, r response, catalog []string) {
			var got struct{ Repositories []string }
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got.Repositories, catalog); diff != "" {
				t.Errorf("catalog (-got +want):\n%s", diff)
			}
		},
	},
	{
		name:   "pull team/app",
		scopes: []string{"repository:team/app:pull"},
		request: func(*world) (string, string, []byte, map[string]string) {
			return "GET", "/v2/team/app/manifests/v1", nil, manifestAccept
		},
		check: func(t *testing.T, w *world, r response, _ []string) {
			if !bytes.Equal(r.body, w.fx.teamManifest) {
				t.Errorf("pulled %q", r.body)
			}
		},
	},
	{
		name:   "pull public/base",
		scopes: []string{"repository:public/base:pull"},
		request: func(*world) (string, string, []byte, map[string]string) {
			return "GET", "/v2/public/base/manifests/v1", nil, manifestAccept
		},
		check: func(t *testing.T, w *world, r response, _ []string) {
			if !bytes.Equal(r.body, w.fx.publicManifest) {
				t.Errorf("pulled %q", r.body)
			}
		},
	},
	{
		name:   "HEAD blob team/app",
		scopes: []string{"repository:team/app:pull"},
		request: func(w *world) (string, string, []byte, map[string]string) {
			return "HEAD", "/v2/team/app/blobs/" + w.fx.teamConfig.String(), nil, nil
		},
		check: func(t *testing.T, w *world, r response, _ []string) {
			if r.header.Get("Docker-Content-Digest") != w.fx.teamConfig.String() {
				t.Errorf("HEAD blob: headers %v", r.header)
			}
		},
	},
	{
		name:   "start upload team/app", // a session start writes nothing: its id is signed state
		scopes: []string{teamScope},
		request: func(*world) (string, string, []byte, map[string]string) {
			return "POST", "/v2/team/app/blobs/uploads/", nil, nil
		},
		check: func(t *testing.T, w *world, r response, _ []string) {
			if !strings.HasPrefix(r.header.Get("Location"), "/v2/team/app/blobs/uploads/") {
				t.Errorf("upload Location %q", r.header.Get("Location"))
			}
		},
	},
	{
		name:   "push team/app",
		writes: true,
		scopes: []string{teamScope},
		request: func(w *world) (string, string, []byte, map[string]string) {
			return "PUT", "/v2/team/app/manifests/pushed", w.fx.teamManifest, manifestType
		},
		check: func(t *testing.T, w *world, _ response, _ []string) {
			w.wantTag(t, "team/app", "pushed", w.fx.teamManifest)
		},
	},
	{
		name:   "push other/app",
		writes: true,
		scopes: []string{"repository:other/app:pull,push"},
		request: func(w *world) (string, string, []byte, map[string]string) {
			return "PUT", "/v2/other/app/manifests/pushed", w.fx.otherManifest, manifestType
		},
		check: func(t *testing.T, w *world, _ response, _ []string) {
			w.wantTag(t, "other/app", "pushed", w.fx.otherManifest)
		},
	},
	{
		name:   "delete manifest team/app",
		writes: true,
		scopes: []string{"repository:team/app:delete"},
		request: func(w *world) (string, string, []byte, map[string]string) {
			return "DELETE", "/v2/team/app/manifests/" + digest.FromBytes(w.fx.doomedManifest).String(), nil, nil
		},
		setup: func(t *testing.T, w *world) { w.restoreDoomed(t) },
		check: func(t *testing.T, w *world, _ response, _ []string) {
			if _, err := w.meta.GetManifest(context.Background(), "team/app", digest.FromBytes(w.fx.doomedManifest)); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("deleted manifest still there: %v", err)
			}
		},
	},
	{
		name:   "delete blob team/app",
		writes: true,
		scopes: []string{"repository:team/app:delete"},
		request: func(w *world) (string, string, []byte, map[string]string) {
			return "DELETE", "/v2/team/app/blobs/" + w.fx.doomedBlob.String(), nil, nil
		},
		setup: func(t *testing.T, w *world) { w.restoreDoomed(t) },
		check: func(t *testing.T, w *world, _ response, _ []string) {
			if _, err := w.meta.GetBlob(context.Background(), "team/app", w.fx.doomedBlob); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("deleted blob still linked: %v", err)
			}
		},
	},
	{
		name:   "mount other/app → team/app",
		scopes: []string{teamScope, "repository:other/app:pull"},
		request: func(w *world) (string, string, []byte, map[string]string) {
			return "POST", "/v2/team/app/blobs/uploads/?mount=" + w.fx.mountable.String() + "&from=other/app", nil, nil
		},
		setup: func(t *testing.T, w *world) {
			err := w.meta.DeleteBlob(context.Background(), "team/app", w.fx.mountable)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
		},
		check: func(t *testing.T, w *world, r response, _ []string) {
			_, err := w.meta.GetBlob(context.Background(), "team/app", w.fx.mountable)
			switch linked := err == nil; {
			case r.status == http.StatusCreated && !linked:
				t.Errorf("201 but the blob is not linked: %v", err)
			case r.status == http.StatusAccepted && linked:
				t.Error("202 (no mount) but the blob was linked into team/app")
			case r.status == http.StatusAccepted && !strings.HasPrefix(r.header.Get("Location"), "/v2/team/app/blobs/uploads/"):
				t.Errorf("202 without an upload session: Location %q", r.header.Get("Location"))
			}
		},
	},
	{
		name:   "set policy",
		writes: true,
		scopes: []string{adminScope},
		request: func(*world) (string, string, []byte, map[string]string) {
			return "PUT", "/v2/_skiff/policies/matrix", []byte(`{"indexChildren":"none"}`), map[string]string{"Content-Type": "application/json"}
		},
		check: func(t *testing.T, w *world, _ response, _ []string) {
			rec, err := w.srv.Policies.Get(context.Background(), "matrix")
			if err != nil || rec.Policy.IndexChildren != "none" || !strings.HasPrefix(rec.UpdatedBy, "admin via ") {
				t.Errorf("policy: %+v %v", rec, err)
			}
		},
	},
	{
		name:    "list users",
		scopes:  []string{adminScope},
		request: func(*world) (string, string, []byte, map[string]string) { return "GET", "/v2/_skiff/users", nil, nil },
		check: func(t *testing.T, _ *world, r response, _ []string) {
			var got httpapi.UserList
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, u := range got.Users {
				names = append(names, u.Name)
			}
			if diff := cmp.Diff(names, []string{"admin", "puller", "pusher"}); diff != "" {
				t.Errorf("users (-got +want):\n%s", diff)
			}
			if bytes.Contains(r.body, []byte("hash")) || bytes.Contains(r.body, []byte("$2a$")) {
				t.Errorf("the user list shows hashes: %s", r.body)
			}
		},
	},
}

func (w *world) wantTag(t *testing.T, repo, tag string, manifest []byte) {
	t.Helper()
	got, err := w.meta.GetTag(context.Background(), repo, tag)
	if err != nil || got.Digest != digest.FromBytes(manifest) {
		t.Errorf("tag %s:%s: %+v %v", repo, tag, got, err)
	}
}

// parseCell splits "401 UNAUTHORIZED" into status and code.
func parseCell(t *testing.T, cell string) (int, string) {
	t.Helper()
	s, code, _ := strings.Cut(cell, " ")
	status, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("cell %q does not start with a status", cell)
	}
	return status, code
}

func TestAuthzMatrix(t *testing.T) {
	t.Parallel()
	log, sec := &syncBuffer{}, &secrets{}
	t.Run("callers", func(t *testing.T) {
		for _, row := range authzMatrix {
			if len(row.cells) != len(authzOps) {
				t.Fatalf("%s: %d cells for %d operations", row.caller, len(row.cells), len(authzOps))
			}
			t.Run(row.caller, func(t *testing.T) {
				t.Parallel()
				w := newWorld(t, log, sec)
				for i, op := range authzOps {
					wantStatus, wantCode := parseCell(t, row.cells[i])
					if op.setup != nil {
						op.setup(t, w)
					}
					authz := w.authorization(t, row.caller, op.scopes)
					before, writes := w.snapshot(t), w.writes.Load()
					method, path, body, header := op.request(w)
					r := w.send(t, method, path, body, header, authz)
					if r.status != wantStatus {
						t.Errorf("%s: status %d, want %d: %s", op.name, r.status, wantStatus, r.body)
						continue
					}
					if wantStatus >= 400 {
						w.checkRefusal(t, op.name, method, r, wantCode, challengeError(row.caller))
						if n := w.writes.Load() - writes; n != 0 {
							t.Errorf("%s: refused with %d, but made %d store writes", op.name, r.status, n)
						}
						if diff := cmp.Diff(w.snapshot(t), before); diff != "" {
							t.Errorf("%s: refused with %d, but the store changed (-got +want):\n%s", op.name, r.status, diff)
						}
						continue
					}
					if op.check != nil {
						op.check(t, w, r, row.catalog)
					}
					if op.writes && w.writes.Load() == writes {
						t.Errorf("%s: succeeded with %d, but no store write was counted", op.name, r.status)
					}
				}
			})
		}
	})
	sec.checkLog(t, log.String())
}

// checkRefusal checks an error answer: its code, and for a 401 the Bearer
// challenge clients follow.
func (w *world) checkRefusal(t *testing.T, op, method string, r response, wantCode, wantChallengeErr string) {
	t.Helper()
	if method == http.MethodHead {
		if len(r.body) != 0 {
			t.Errorf("%s: HEAD answer has a body", op)
		}
	} else if got := r.codes(t); !slices.Equal(got, []string{wantCode}) {
		t.Errorf("%s: codes %v, want %s", op, got, wantCode)
	}
	if r.status != http.StatusUnauthorized {
		return
	}
	c := r.header.Get("WWW-Authenticate")
	prefix := fmt.Sprintf(`Bearer realm=%q,service="skiff"`, w.url+deploy.TokenPath)
	if !strings.HasPrefix(c, prefix) {
		t.Errorf("%s: challenge %q, want it to start %s", op, c, prefix)
	}
	if wantChallengeErr == "" && strings.Contains(c, "error=") || wantChallengeErr != "" && !strings.Contains(c, `error="`+wantChallengeErr+`"`) {
		t.Errorf("%s: challenge %q, want error %q", op, c, wantChallengeErr)
	}
}

// The token endpoint grants the subset of the requested scopes the caller
// may have, whatever it asks.
func TestTokenGrantsSubset(t *testing.T) {
	t.Parallel()
	log, sec := &syncBuffer{}, &secrets{}
	w := newWorld(t, log, sec)
	asked := []string{
		"repository:team/app:pull,push,delete",
		"repository:other/app:pull",
		"repository:public/base:pull,push",
		"registry:catalog:*",
		"registry:admin:*",
		"repository:Bad/Name:pull", // invalid scopes are ignored
	}
	scope := func(typ, name string, actions ...string) auth.Scope {
		return auth.Scope{Type: typ, Name: name, Actions: actions}
	}
	tests := []struct {
		user, password string
		want           []auth.Scope
	}{
		{"", "", []auth.Scope{scope("repository", "public/base", "pull")}},
		{"puller", pullerPassword, []auth.Scope{
			scope("repository", "team/app", "pull"), scope("repository", "public/base", "pull"), scope("registry", "catalog", "*")}},
		{"pusher", pusherPassword, []auth.Scope{
			scope("repository", "team/app", "pull", "push"), scope("repository", "public/base", "pull"), scope("registry", "catalog", "*")}},
		{"admin", adminPassword, []auth.Scope{
			scope("repository", "team/app", "pull", "push", "delete"), scope("repository", "other/app", "pull"),
			scope("repository", "public/base", "pull", "push"), scope("registry", "catalog", "*"), scope("registry", "admin", "*")}},
	}
	for _, tc := range tests {
		c := tokenClaims(t, w.token(t, tc.user, tc.password, asked))
		if diff := cmp.Diff(c.Access, tc.want); diff != "" {
			t.Errorf("%q: access (-got +want):\n%s", tc.user, diff)
		}
		if c.Subject != tc.user || c.Issuer != "skiff" || !slices.Equal(c.Audience, jwt.ClaimStrings{"skiff"}) ||
			c.ExpiresAt.Sub(c.IssuedAt.Time) != auth.DefaultTokenTTL {
			t.Errorf("%q: claims %+v", tc.user, c.RegisteredClaims)
		}
	}

	// The OAuth2 password grant (POST) grants the same.
	form := url.Values{"grant_type": {"password"}, "username": {"pusher"}, "password": {pusherPassword}, "service": {"skiff"}, "scope": {strings.Join(asked, " ")}}
	r := do(t, "POST", w.url+deploy.TokenPath, []byte(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil {
		t.Fatalf("POST token: %d %s", r.status, r.body)
	}
	sec.add(out.AccessToken)
	if diff := cmp.Diff(tokenClaims(t, out.AccessToken).Access, tests[2].want); diff != "" {
		t.Errorf("POST token access (-got +want):\n%s", diff)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("token answer Cache-Control %q", r.header.Get("Cache-Control"))
	}

	// A wrong password gets no token at all, not an anonymous one.
	r = w.send(t, "GET", deploy.TokenPath+"?scope=repository:public/base:pull", nil, nil, basic("pusher", "not-the-password"))
	if r.status != http.StatusUnauthorized || !slices.Equal(r.codes(t), []string{"UNAUTHORIZED"}) {
		t.Errorf("wrong password: %d %s", r.status, r.body)
	}
	sec.checkLog(t, log.String())
}

// Ten failed logins block the user name and the source address (each on
// its own) for the rest of the minute: 429 with Retry-After, on requests
// and on the token endpoint alike. Anonymous pulls are not logins.
func TestFailedLoginsLimited(t *testing.T) {
	t.Parallel()
	log, sec := &syncBuffer{}, &secrets{}
	w := newWorld(t, log, sec, func(c *config.Config) { c.TrustForwarded = true })
	from := func(addr string) map[string]string { return map[string]string{"X-Forwarded-For": addr} }
	const attacker, other = "203.0.113.1", "203.0.113.2"
	for i := range 10 {
		sec.add(fmt.Sprintf("wrong-password-%d", i))
	}
	for i := range 9 {
		r := w.send(t, "GET", "/v2/", nil, from(attacker), basic("pusher", fmt.Sprintf("wrong-password-%d", i)))
		if r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i+1, r.status, r.body)
		}
	}
	// Nine failures block nothing yet.
	if r := w.send(t, "GET", "/v2/", nil, from(other), basic("pusher", pusherPassword)); r.status != http.StatusOK {
		t.Fatalf("after 9 failures: %d %s", r.status, r.body)
	}
	if r := w.send(t, "GET", "/v2/", nil, from(attacker), basic("pusher", "wrong-password-9")); r.status != http.StatusUnauthorized {
		t.Fatalf("failure 10: %d %s", r.status, r.body)
	}

	blocked := []struct {
		name          string
		path, address string
		authorization string
	}{
		{"the user, right password, same address", "/v2/", attacker, basic("pusher", pusherPassword)},
		{"the user from another address", "/v2/", other, basic("pusher", pusherPassword)},
		{"another user from the address", "/v2/", attacker, basic("puller", pullerPassword)},
		{"the token endpoint, the user", deploy.TokenPath + "?scope=repository:team/app:pull", "203.0.113.9", basic("pusher", pusherPassword)},
	}
	for _, tc := range blocked {
		r := w.send(t, "GET", tc.path, nil, from(tc.address), tc.authorization)
		if r.status != http.StatusTooManyRequests || !slices.Equal(r.codes(t), []string{"TOOMANYREQUESTS"}) {
			t.Errorf("%s: %d %s, want 429 TOOMANYREQUESTS", tc.name, r.status, r.body)
			continue
		}
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || secs > 61 {
			t.Errorf("%s: Retry-After %q, want seconds up to the minute", tc.name, r.header.Get("Retry-After"))
		}
	}
	// Others are unaffected, and so is anonymous pull from the address.
	if r := w.send(t, "GET", "/v2/", nil, from("203.0.113.3"), basic("puller", pullerPassword)); r.status != http.StatusOK {
		t.Errorf("another user from another address: %d %s", r.status, r.body)
	}
	if r := w.send(t, "GET", "/v2/public/base/manifests/v1", nil, from(attacker), ""); r.status != http.StatusOK {
		t.Errorf("anonymous pull from the blocked address: %d %s", r.status, r.body)
	}
	sec.checkLog(t, log.String())
}

// Behind CloudFront the source address is the header the viewer function
// sets (ClientIPHeader), not X-Forwarded-For, whose last entry there can be
// an edge shared by many clients: failures count per viewer address
// whatever X-Forwarded-For says, and a request without the header counts
// as its peer.
func TestFailedLoginsByClientIPHeader(t *testing.T) {
	t.Parallel()
	log, sec := &syncBuffer{}, &secrets{}
	w := newWorld(t, log, sec, func(c *config.Config) {
		c.TrustForwarded, c.ClientIPHeader = true, deploy.ViewerIPHeader
	})
	from := func(viewer, xff string) map[string]string {
		return map[string]string{deploy.ViewerIPHeader: viewer, "X-Forwarded-For": xff}
	}
	const attacker, bystander, edge = "203.0.113.1", "203.0.113.2", "198.51.100.50"
	for i := range 10 {
		pw := fmt.Sprintf("wrong-password-%d", i)
		sec.add(pw)
		// The same edge in X-Forwarded-For, a spoofed first entry: neither
		// counts, only the viewer address.
		r := w.send(t, "GET", "/v2/", nil, from(attacker, fmt.Sprintf("10.0.0.%d, %s", i, edge)), basic(fmt.Sprintf("nobody-%d", i), pw))
		if r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i+1, r.status, r.body)
		}
	}
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"the attacker's viewer address", from(attacker, edge), http.StatusTooManyRequests},
		{"another viewer behind the same edge", from(bystander, edge), http.StatusOK},
		{"the attacker claiming another X-Forwarded-For", from(attacker, bystander), http.StatusTooManyRequests},
		{"no viewer header: the peer address", map[string]string{"X-Forwarded-For": attacker}, http.StatusOK},
		{"a header that is no address: the peer address", from("not-an-ip", attacker), http.StatusOK},
	}
	for _, tc := range tests {
		if r := w.send(t, "GET", "/v2/", nil, tc.header, basic("puller", pullerPassword)); r.status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.want)
		}
	}
	sec.checkLog(t, log.String())
}

// The matrix in docs/auth.md is generated from authzMatrix; this fails
// when they differ (go test ./internal/httpapi -run TestMatrixDoc -update
// rewrites it).
func TestMatrixDoc(t *testing.T) {
	const path = "../../docs/auth.md"
	const begin, end = "<!-- authz-matrix:begin (generated by go test ./internal/httpapi -run TestMatrixDoc -update) -->\n", "<!-- authz-matrix:end -->"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("docs/auth.md has no %q ... %q section", strings.TrimSpace(begin), end)
	}
	want := matrixMarkdown()
	if got := s[i+len(begin) : j]; got != want {
		if *updateMatrix {
			if err := os.WriteFile(path, []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("docs/auth.md's authorization matrix differs from authzMatrix; run go test ./internal/httpapi -run TestMatrixDoc -update\n(-got +want):\n%s", cmp.Diff(got, want))
	}
}

// matrixMarkdown renders authzMatrix as a Markdown table, one row per
// caller and one column per operation.
func matrixMarkdown() string {
	var b strings.Builder
	b.WriteString("| caller |")
	for _, op := range authzOps {
		b.WriteString(" " + op.name + " |")
	}
	b.WriteString("\n|---|")
	for range authzOps {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range authzMatrix {
		b.WriteString("| " + row.caller + " |")
		for i, op := range authzOps {
			cell := row.cells[i]
			if op.name == "GET /v2/_catalog" && strings.HasPrefix(cell, "200") {
				cell += ": " + strings.Join(row.catalog, ", ")
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
