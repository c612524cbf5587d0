package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
)

func TestParseUserArgs(t *testing.T) {
	t.Parallel()
	const reg = "--registry=http://127.0.0.1:5000"
	tests := []parseCase[userArgs]{
		{name: "add a person", args: []string{"add", "alice", "--admin", "--password-stdin", "--data=./data"},
			want: userArgs{action: "add", name: "alice", admin: true, passwordStdin: true, data: "./data"}},
		{name: "add a robot", args: []string{"add", "--robot", "robot-ci", reg},
			want: userArgs{action: "add", name: "robot-ci", robot: true, registry: "http://127.0.0.1:5000"}},
		{name: "grant, flags after", args: []string{"grant", "robot-ci", "team/", "--actions=pull, push", "--table=t"},
			want: userArgs{action: "grant", name: "robot-ci", prefix: "team", actions: []string{"pull", "push"}, table: "t"}},
		{name: "grant everything", args: []string{"grant", "ops", "*", "--actions=pull,push,delete", reg},
			want: userArgs{action: "grant", name: "ops", prefix: "*", actions: []string{"pull", "push", "delete"}, registry: "http://127.0.0.1:5000"}},
		{name: "revoke the whole grant", args: []string{"revoke", "robot-ci", "team", "--json"}, env: env("SKIFF_REGISTRY", "https://reg.example/"),
			want: userArgs{action: "revoke", name: "robot-ci", prefix: "team", registry: "https://reg.example", json: true}},
		{name: "--data wins over $SKIFF_REGISTRY", args: []string{"list", "--data", "d"}, env: env("SKIFF_REGISTRY", "http://x"),
			want: userArgs{action: "list", data: "d"}},
		{name: "passwd", args: []string{"passwd", "alice", "--password-stdin", reg},
			want: userArgs{action: "passwd", name: "alice", passwordStdin: true, registry: "http://127.0.0.1:5000"}},
		{name: "delete", args: []string{"delete", "alice", reg}, want: userArgs{action: "delete", name: "alice", registry: "http://127.0.0.1:5000"}},

		{name: "no command", args: nil, wantErr: "needs a command"},
		{name: "unknown command", args: []string{"show", "alice", reg}, wantErr: `unknown user command "show"`},
		{name: "a person without --password-stdin", args: []string{"add", "alice", reg}, wantErr: "give --password-stdin"},
		{name: "a password flag does not exist", args: []string{"add", "alice", "--password=hunter2hunter2", reg}, wantErr: "unknown flag: --password"},
		{name: "passwd without --password-stdin", args: []string{"passwd", "alice", reg}, wantErr: "--password-stdin"},
		{name: "grant without actions", args: []string{"grant", "alice", "team", reg}, wantErr: "needs --actions"},
		{name: "grant an unknown action", args: []string{"grant", "alice", "team", "--actions=pull,fly", reg}, wantErr: `unknown action "fly"`},
		{name: "invalid name", args: []string{"delete", "Alice", reg}, wantErr: "may only hold"},
		{name: "invalid prefix", args: []string{"grant", "alice", "Team/", "--actions=pull", reg}, wantErr: "must be lower case"},
		{name: "grant without prefix", args: []string{"grant", "alice", "--actions=pull", reg}, wantErr: "takes NAME PREFIX"},
		{name: "list with an argument", args: []string{"list", "alice", reg}, wantErr: "takes no arguments"},
		{name: "two targets", args: []string{"list", reg, "--data=d"}, wantErr: "one of --registry, --data and --table"},
		{name: "no target", args: []string{"list"}, wantErr: "--data=DIR"},
		{name: "registry without scheme", args: []string{"list", "--registry=127.0.0.1:5000"}, wantErr: "with its scheme"},
	}
	runParseCases(t, tests, parseWith("user", newUserCommand))
}

func TestReadPassword(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"pass word 1234\n": "pass word 1234", "crlf-password\r\nsecond line": "crlf-password", "no newline at all": "no newline at all"} {
		if got, err := readPassword(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := readPassword(strings.NewReader("\n")); err == nil {
		t.Error("an empty line was accepted")
	}
}

// cliIn runs the skiff CLI in-process with stdin.
func cliIn(t *testing.T, getenv func(string) string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// The bootstrap the README describes: the first admin goes straight into
// the store of a stopped server, then `skiff serve --auth` runs on it and
// the admin manages it remotely. While it runs, the store is locked.
func TestUserBootstrap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const rootPassword = "root-password-8fK2mQ"
	out, _, err := cliIn(t, env(), rootPassword+"\n", "user", "add", "root", "--admin", "--password-stdin", "--data", dir)
	if err != nil || !strings.Contains(out, "added user root (admin)") {
		t.Fatalf("add the first admin: %q %v", out, err)
	}
	url, logs := startServe(t, "--auth", "--operator-api", "--data="+dir)

	root := env("SKIFF_REGISTRY", url, "SKIFF_USERNAME", "root", "SKIFF_PASSWORD", rootPassword)
	out, _, err = cliIn(t, root, "", "user", "list")
	if err != nil || !strings.Contains(out, "root  ") || !strings.Contains(out, "yes") {
		t.Errorf("list as root: %q %v", out, err)
	}
	_, _, err = cliIn(t, env("SKIFF_REGISTRY", url), "", "user", "list")
	if err == nil || !strings.Contains(err.Error(), "requires authentication: set SKIFF_USERNAME and SKIFF_PASSWORD") {
		t.Errorf("without credentials: %v", err)
	}

	start := time.Now()
	_, _, err = cliIn(t, env(), "", "user", "list", "--data", dir)
	if err == nil || !strings.Contains(err.Error(), "is locked by another process, most likely a running `skiff serve --data") || !strings.Contains(err.Error(), "--registry") {
		t.Errorf("--data while the server runs: %v", err)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("the locked store took %s to report", time.Since(start))
	}
	if strings.Contains(logs.String(), rootPassword) {
		t.Error("the server log holds the password")
	}
}

// authServer runs a server wired as `skiff serve --auth --operator-api`
// with an admin "root" and a user "dev" who may pull team/.
func authServer(t *testing.T) (string, *server.Server) {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir, cfg.Auth, cfg.OperatorAPI = t.TempDir(), true, true
	stores, err := backend.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stores.Close() })
	srv, err := server.New(ctx, cfg, stores, httpapi.GroupAll, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler)
	t.Cleanup(hs.Close)
	seedUser(t, stores.Meta, "root", rootSecret, true)
	seedUser(t, stores.Meta, "dev", devSecret, false, auth.Grant{Prefix: "team", Actions: []string{"pull"}})
	return hs.URL, srv
}

const (
	rootSecret = "root-secret-Hq3vX9"
	devSecret  = "dev-secret-Tn5cW2pL"
)

// seedUser stores a user as auth.Users does (auth.User as JSON under
// user/<name>), hashed at bcrypt's minimum cost: at the default cost each
// login takes about 0.7 s under the race detector.
func seedUser(t *testing.T, meta storage.Settings, name, password string, admin bool, grants ...auth.Grant) {
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
	if err := meta.PutSetting(context.Background(), storage.Setting{Key: "user/" + name, Value: b}, 0); err != nil {
		t.Fatal(err)
	}
}

// tokenAccess gets a token as user and returns the access it grants.
func tokenAccess(t *testing.T, url, user, password, scope string) []auth.Scope {
	t.Helper()
	req, err := http.NewRequest("GET", url+deploy.TokenPath+"?service=skiff&scope="+scope, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token for %s: %d %v", user, resp.StatusCode, err)
	}
	parts := strings.Split(out.Token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c auth.Claims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Access
}

func TestUserCLIRegistry(t *testing.T) {
	t.Parallel()
	url, _ := authServer(t)
	root := env("SKIFF_REGISTRY", url, "SKIFF_USERNAME", "root", "SKIFF_PASSWORD", rootSecret)

	// A robot's secret is generated and is all that goes to stdout.
	secret, errOut, err := cliIn(t, root, "", "user", "add", "robot-ci", "--robot")
	if err != nil {
		t.Fatal(err)
	}
	secret = strings.TrimSuffix(secret, "\n")
	if len(secret) != 43 || strings.ContainsAny(secret, " \n") || !strings.Contains(errOut, "added robot robot-ci") || !strings.Contains(errOut, "shown only now") || strings.Contains(errOut, secret) {
		t.Errorf("robot add: stdout %q, stderr %q", secret, errOut)
	}
	out, _, err := cliIn(t, root, "", "user", "grant", "robot-ci", "team/", "--actions=pull,push")
	if err != nil || !strings.Contains(out, "granted pull,push on team to robot-ci") || !strings.Contains(out, "team:pull,push") {
		t.Errorf("grant: %q %v", out, err)
	}
	want := []auth.Scope{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}
	if diff := cmp.Diff(tokenAccess(t, url, "robot-ci", secret, "repository:team/app:pull,push,delete"), want); diff != "" {
		t.Errorf("robot token (-got +want):\n%s", diff)
	}
	if _, _, err := cliIn(t, root, "", "user", "add", "robot-ci", "--robot"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second add: %v", err)
	}

	// A person, with a password from stdin; a short one is refused with the server's reason.
	if _, _, err := cliIn(t, root, "too-short\n", "user", "add", "alice", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "at least 12 characters") {
		t.Errorf("short password: %v", err)
	}
	const alicePassword = "alice-password-4Rw8"
	if out, _, err := cliIn(t, root, alicePassword+"\n", "user", "add", "alice", "--password-stdin", "--json"); err != nil || strings.Contains(out, alicePassword) {
		t.Errorf("add alice: %q %v", out, err)
	}
	out, _, err = cliIn(t, root, "", "user", "list", "--json")
	var list httpapi.UserList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || strings.Contains(out, "hash") {
		t.Fatalf("list --json: %q %v", out, err)
	}
	var names []string
	for _, u := range list.Users {
		names = append(names, u.Name)
	}
	if diff := cmp.Diff(names, []string{"alice", "dev", "robot-ci", "root"}); diff != "" {
		t.Errorf("users (-got +want):\n%s", diff)
	}
	out, _, err = cliIn(t, root, "", "user", "revoke", "robot-ci", "team", "--actions=push")
	if err != nil || !strings.Contains(out, "revoked push on team from robot-ci") || !strings.Contains(out, "team:pull\n") {
		t.Errorf("revoke: %q %v", out, err)
	}
	if _, _, err := cliIn(t, root, "", "user", "revoke", "robot-ci", "other"); err == nil || !strings.Contains(err.Error(), "no grant on other") {
		t.Errorf("revoke a missing grant: %v", err)
	}
	if out, _, err := cliIn(t, root, "dev-secret-renewed-1\n", "user", "passwd", "dev", "--password-stdin"); err != nil || !strings.Contains(out, "replaced the password of dev") {
		t.Errorf("passwd: %q %v", out, err)
	}

	// Who may: a user with grants is no admin; wrong credentials are refused.
	dev := env("SKIFF_REGISTRY", url, "SKIFF_USERNAME", "dev", "SKIFF_PASSWORD", "dev-secret-renewed-1")
	if _, _, err := cliIn(t, dev, "", "user", "list"); err == nil || !strings.Contains(err.Error(), "not an admin") {
		t.Errorf("dev lists users: %v", err)
	}
	wrong := env("SKIFF_REGISTRY", url, "SKIFF_USERNAME", "root", "SKIFF_PASSWORD", "not-the-password")
	if _, _, err := cliIn(t, wrong, "", "user", "list"); err == nil || !strings.Contains(err.Error(), "refused the credentials of root") {
		t.Errorf("wrong password: %v", err)
	}
	if _, _, err := cliIn(t, env("SKIFF_REGISTRY", url, "SKIFF_USERNAME", "root"), "", "user", "list"); err == nil || !strings.Contains(err.Error(), "both SKIFF_USERNAME and SKIFF_PASSWORD") {
		t.Errorf("half the credentials: %v", err)
	}

	// skiff policy and skiff index send the same credentials.
	out, _, err = cliIn(t, root, "", "policy", "set", "mirror/", "--index-children=none")
	if err != nil || !strings.Contains(out, "updated-by:      root via 127.0.0.1") {
		t.Errorf("policy set as root: %q %v", out, err)
	}
	if _, _, err := cliIn(t, env("SKIFF_REGISTRY", url), "", "policy", "list"); err == nil || !strings.Contains(err.Error(), "SKIFF_USERNAME") {
		t.Errorf("policy list without credentials: %v", err)
	}
	if _, _, err := cliIn(t, dev, "", "policy", "list"); err == nil || !strings.Contains(err.Error(), "not an admin") {
		t.Errorf("policy list as dev: %v", err)
	}
	if _, _, err := cliIn(t, root, "", "index", "status", "mirror/app:v1"); err == nil || !strings.Contains(err.Error(), "mirror/app") || strings.Contains(err.Error(), "SKIFF_USERNAME") {
		t.Errorf("index status as root: %v (want the registry's answer about mirror/app, past authentication)", err)
	}
	if _, _, err := cliIn(t, env("SKIFF_REGISTRY", url), "", "index", "status", "mirror/app:v1"); err == nil || !strings.Contains(err.Error(), "SKIFF_USERNAME") {
		t.Errorf("index status without credentials: %v", err)
	}

	// Delete; not yourself.
	if out, _, err := cliIn(t, root, "", "user", "delete", "alice"); err != nil || !strings.Contains(out, "deleted user alice") {
		t.Errorf("delete: %q %v", out, err)
	}
	if _, _, err := cliIn(t, root, "", "user", "delete", "alice"); err == nil || !strings.Contains(err.Error(), "there is no user named alice") {
		t.Errorf("second delete: %v", err)
	}
	if _, _, err := cliIn(t, root, "", "user", "delete", "root"); err == nil || !strings.Contains(err.Error(), "authenticated as root") {
		t.Errorf("self delete: %v", err)
	}
}

// --data works on a stopped server's store; only add creates one.
func TestUserCLIData(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := cliIn(t, env(), "", "user", "list", "--data", dir); err == nil || !strings.Contains(err.Error(), "holds no Skiff store") {
		t.Errorf("list on no store: %v", err)
	}
	if out, _, err := cliIn(t, env(), "", "user", "list", "--data", t.TempDir()); err == nil {
		t.Errorf("list on an empty directory: %q", out)
	}
	secret, _, err := cliIn(t, env(), "", "user", "add", "robot-ci", "--robot", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	secret = strings.TrimSpace(secret)
	steps := [][]string{
		{"grant", "robot-ci", "*", "--actions=pull"},
		{"grant", "robot-ci", "team", "--actions=push,pull"},
		{"revoke", "robot-ci", "*"},
	}
	for _, s := range steps {
		if _, _, err := cliIn(t, env(), "", append(append([]string{"user"}, s...), "--data", dir)...); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
	}
	out, _, err := cliIn(t, env(), "", "user", "list", "--data", dir)
	if err != nil || !strings.Contains(out, "robot-ci  yes    no     team:pull,push") {
		t.Errorf("list: %q %v", out, err)
	}
	if _, _, err := cliIn(t, env(), "robot-secret-renewed\n", "user", "passwd", "robot-ci", "--password-stdin", "--data", dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cliIn(t, env(), "", "user", "grant", "nobody", "team", "--actions=pull", "--data", dir); err == nil || !strings.Contains(err.Error(), "there is no user named nobody") {
		t.Errorf("grant to nobody: %v", err)
	}

	meta, err := local.OpenMetaStore(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	us := auth.NewUsers(meta)
	if _, err := us.Authenticate(context.Background(), "robot-ci", secret); err == nil {
		t.Error("the replaced secret still works")
	}
	if _, err := us.Authenticate(context.Background(), "robot-ci", "robot-secret-renewed"); err != nil {
		t.Errorf("the new secret: %v", err)
	}
	meta.Close()
	if out, _, err := cliIn(t, env(), "", "user", "delete", "robot-ci", "--data", dir); err != nil || !strings.Contains(out, "deleted robot robot-ci") {
		t.Errorf("delete: %q %v", out, err)
	}
	if out, _, err := cliIn(t, env(), "", "user", "list", "--data", dir); err != nil || !strings.Contains(out, "no users") {
		t.Errorf("empty list: %q %v", out, err)
	}
}

// --table changes the DynamoDB table itself.
func TestUserCLITable(t *testing.T) {
	t.Parallel()
	testenv.DynamoDB(t)
	table := newTable(t)
	getenv := env()
	secret, _, err := cliIn(t, getenv, "", "user", "add", "robot-ci", "--robot", "--table", table)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cliIn(t, getenv, "", "user", "grant", "robot-ci", "team/", "--actions=pull", "--table", table); err != nil {
		t.Fatal(err)
	}
	out, _, err := cliIn(t, getenv, "", "user", "list", "--json", "--table", table)
	var list httpapi.UserList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Users) != 1 || strings.Contains(out, strings.TrimSpace(secret)) {
		t.Fatalf("list: %q %v", out, err)
	}
	if diff := cmp.Diff(list.Users[0].Grants, []auth.Grant{{Prefix: "team", Actions: []string{"pull"}}}); diff != "" {
		t.Errorf("grants (-got +want):\n%s", diff)
	}
	if _, _, err := cliIn(t, getenv, "", "user", "delete", "robot-ci", "--table", table); err != nil {
		t.Fatal(err)
	}
}
