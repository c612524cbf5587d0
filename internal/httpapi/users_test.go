package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/internal/httpapi"
)

func TestUsersAPI(t *testing.T) {
	t.Parallel()
	log, sec := &syncBuffer{}, &secrets{}
	w := newWorld(t, log, sec)
	admin := basic("admin", adminPassword)
	jsonBody := map[string]string{"Content-Type": "application/json"}
	const (
		secret    = "robot-secret-Zq4mN8vW2x"
		newSecret = "robot-secret-Bt6yH1kP9s"
		short     = "tiny-Xy7"
	)
	sec.add(secret, newSecret, short)
	ignoreTimes := cmpopts.IgnoreFields(httpapi.UserInfo{}, "Created", "Updated")
	user := func(t *testing.T, r response, status int) httpapi.UserInfo {
		t.Helper()
		if r.status != status {
			t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
		}
		for _, s := range []string{secret, newSecret, "hash", "$2a$"} {
			if bytes.Contains(r.body, []byte(s)) {
				t.Fatalf("the answer holds %q: %s", s, r.body)
			}
		}
		return decodeJSON[httpapi.UserInfo](t, r)
	}

	// Create a robot; a second create of the same name is refused.
	r := w.send(t, "PUT", "/v2/_skiff/users/robot-ci", []byte(`{"password":"`+secret+`","robot":true}`), jsonBody, admin)
	got := user(t, r, http.StatusCreated)
	if diff := cmp.Diff(got, httpapi.UserInfo{Name: "robot-ci", Robot: true, Grants: []auth.Grant{}}, ignoreTimes); diff != "" || got.Created.IsZero() {
		t.Errorf("created (-got +want):\n%s", diff)
	}
	if r.header.Get("Location") != "/v2/_skiff/users/robot-ci" {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	wantError(t, w.send(t, "PUT", "/v2/_skiff/users/robot-ci", []byte(`{"password":"`+newSecret+`"}`), jsonBody, admin), http.StatusConflict, "USER_EXISTS")

	// Invalid requests: 400 USER_INVALID, and the message never quotes a password.
	invalid := []struct {
		name, method, path, body string
	}{
		{"bad name", "PUT", "/v2/_skiff/users/Robot", `{"password":"` + secret + `"}`},
		{"short password", "PUT", "/v2/_skiff/users/bob", `{"password":"` + short + `"}`},
		{"no password", "PUT", "/v2/_skiff/users/bob", `{"robot":true}`},
		{"unknown field", "PUT", "/v2/_skiff/users/bob", `{"password":"` + secret + `","role":"admin"}`},
		{"not JSON", "PUT", "/v2/_skiff/users/bob", `{"password":"` + secret + `\x01"}`},
		{"wrong type", "PUT", "/v2/_skiff/users/bob", `{"password":"` + secret + `","admin":"yes"}`},
		{"trailing data", "PUT", "/v2/_skiff/users/bob", `{"password":"` + secret + `"} {}`},
		{"empty body", "PUT", "/v2/_skiff/users/bob", ``},
		{"empty password change", "PUT", "/v2/_skiff/users/robot-ci/password", `{"password":""}`},
		{"bad action", "POST", "/v2/_skiff/users/robot-ci/grants", `{"prefix":"team","actions":["fly"]}`},
		{"no action", "POST", "/v2/_skiff/users/robot-ci/grants", `{"prefix":"team","actions":[]}`},
		{"bad prefix", "POST", "/v2/_skiff/users/robot-ci/grants", `{"prefix":"Team","actions":["pull"]}`},
		{"no prefix", "POST", "/v2/_skiff/users/robot-ci/grants", `{"actions":["pull"]}`},
		{"revoke without prefix", "DELETE", "/v2/_skiff/users/robot-ci/grants", ``},
		{"revoke a bad action", "DELETE", "/v2/_skiff/users/robot-ci/grants?prefix=team&actions=fly", ``},
		{"delete yourself", "DELETE", "/v2/_skiff/users/admin", ``},
	}
	for _, tc := range invalid {
		msg := wantError(t, w.send(t, tc.method, tc.path, []byte(tc.body), jsonBody, admin), http.StatusBadRequest, "USER_INVALID")
		if strings.Contains(msg, secret) || strings.Contains(msg, short) {
			t.Errorf("%s: the message quotes the password: %q", tc.name, msg)
		}
	}
	big := `{"password":"` + strings.Repeat("x", 5000) + `"}`
	wantError(t, w.send(t, "PUT", "/v2/_skiff/users/bob", []byte(big), jsonBody, admin), http.StatusRequestEntityTooLarge, "USER_INVALID")

	// Unknown users and grants: 404.
	wantError(t, w.send(t, "GET", "/v2/_skiff/users/nobody", nil, nil, admin), http.StatusNotFound, "USER_UNKNOWN")
	wantError(t, w.send(t, "POST", "/v2/_skiff/users/nobody/grants", []byte(`{"prefix":"team","actions":["pull"]}`), jsonBody, admin), http.StatusNotFound, "USER_UNKNOWN")
	wantError(t, w.send(t, "PUT", "/v2/_skiff/users/nobody/password", []byte(`{"password":"`+newSecret+`"}`), jsonBody, admin), http.StatusNotFound, "USER_UNKNOWN")
	wantError(t, w.send(t, "DELETE", "/v2/_skiff/users/robot-ci/grants?prefix=other", nil, nil, admin), http.StatusNotFound, "GRANT_UNKNOWN")

	// Grants: given, merged, and in effect at the token endpoint.
	got = user(t, w.send(t, "POST", "/v2/_skiff/users/robot-ci/grants", []byte(`{"prefix":"team/","actions":["pull"]}`), jsonBody, admin), http.StatusOK)
	got = user(t, w.send(t, "POST", "/v2/_skiff/users/robot-ci/grants", []byte(`{"prefix":"team","actions":["push","delete"]}`), jsonBody, admin), http.StatusOK)
	if diff := cmp.Diff(got.Grants, []auth.Grant{{Prefix: "team", Actions: []string{"delete", "pull", "push"}}}); diff != "" {
		t.Errorf("grants (-got +want):\n%s", diff)
	}
	got = user(t, w.send(t, "DELETE", "/v2/_skiff/users/robot-ci/grants?prefix=team/&actions=push,delete", nil, nil, admin), http.StatusOK)
	if diff := cmp.Diff(got.Grants, []auth.Grant{{Prefix: "team", Actions: []string{"pull"}}}); diff != "" {
		t.Errorf("grants after revoke (-got +want):\n%s", diff)
	}
	c := tokenClaims(t, w.token(t, "robot-ci", secret, []string{"repository:team/app:pull,push"}))
	if diff := cmp.Diff(c.Access, []auth.Scope{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}); diff != "" {
		t.Errorf("robot token access (-got +want):\n%s", diff)
	}

	// A new password replaces the old one (PUT and PATCH alike).
	user(t, w.send(t, "PATCH", "/v2/_skiff/users/robot-ci/password", []byte(`{"password":"`+newSecret+`"}`), jsonBody, admin), http.StatusOK)
	if r := w.send(t, "GET", "/v2/", nil, nil, basic("robot-ci", secret)); r.status != http.StatusUnauthorized {
		t.Errorf("old password: %d", r.status)
	}
	if r := w.send(t, "GET", "/v2/", nil, nil, basic("robot-ci", newSecret)); r.status != http.StatusOK {
		t.Errorf("new password: %d %s", r.status, r.body)
	}

	// Listing shows every user, never a hash.
	r = w.send(t, "GET", "/v2/_skiff/users", nil, nil, admin)
	list := decodeJSON[httpapi.UserList](t, r)
	var names []string
	for _, u := range list.Users {
		names = append(names, u.Name)
	}
	if diff := cmp.Diff(names, []string{"admin", "puller", "pusher", "robot-ci"}); diff != "" || bytes.Contains(r.body, []byte("hash")) {
		t.Errorf("list (-got +want):\n%s\n%s", diff, r.body)
	}

	// Only admins: a user with grants gets 403, a caller without credentials 401.
	for _, path := range []string{"/v2/_skiff/users", "/v2/_skiff/users/robot-ci", "/v2/_skiff/users/robot-ci/grants?prefix=team"} {
		method := "GET"
		if strings.Contains(path, "grants") {
			method = "DELETE"
		}
		msg := wantError(t, w.send(t, method, path, nil, nil, basic("pusher", pusherPassword)), http.StatusForbidden, "DENIED")
		if !strings.Contains(msg, "not an admin") {
			t.Errorf("403 message %q", msg)
		}
		wantError(t, w.send(t, method, path, nil, nil, ""), http.StatusUnauthorized, "UNAUTHORIZED")
	}
	wantError(t, w.send(t, "POST", "/v2/_skiff/users/robot-ci", nil, nil, admin), http.StatusMethodNotAllowed, "UNSUPPORTED")

	// Delete answers the user as it was; a second delete finds nobody.
	got = user(t, w.send(t, "DELETE", "/v2/_skiff/users/robot-ci", nil, nil, admin), http.StatusOK)
	if got.Name != "robot-ci" || len(got.Grants) != 1 {
		t.Errorf("deleted: %+v", got)
	}
	wantError(t, w.send(t, "DELETE", "/v2/_skiff/users/robot-ci", nil, nil, admin), http.StatusNotFound, "USER_UNKNOWN")
	if r := w.send(t, "GET", "/v2/", nil, nil, basic("robot-ci", newSecret)); r.status != http.StatusUnauthorized {
		t.Errorf("a deleted user logs in: %d", r.status)
	}

	// Each change leaves an audit line naming who did what, without secrets.
	logs := log.String()
	for _, want := range []string{`"action":"create","name":"robot-ci","robot":true`, `"action":"grant","name":"robot-ci","prefix":"team/","actions":"pull"`, `"action":"password","name":"robot-ci"`, `"action":"delete","name":"robot-ci"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("no audit line with %s", want)
		}
	}
	if !strings.Contains(logs, `"msg":"user change","request_id"`) || !strings.Contains(logs, `"by":"admin"`) {
		t.Error("audit lines do not say who")
	}
	sec.checkLog(t, logs)
}

// Without authentication the operator API serves no user management:
// nobody could log in, and anyone could create an admin.
func TestUsersAPIOffWithoutAuth(t *testing.T) {
	t.Parallel()
	srv := newPolicyServer(t, true)
	for _, path := range []string{"/v2/_skiff/users", "/v2/_skiff/users/admin", "/v2/_skiff/users/admin/password"} {
		r := do(t, "PUT", srv.URL+path, []byte(`{"password":"a long enough password","admin":true}`), nil)
		if msg := wantError(t, r, http.StatusNotFound, "UNSUPPORTED"); !strings.Contains(msg, "--auth") {
			t.Errorf("%s: message %q does not say how to turn authentication on", path, msg)
		}
	}
	var body map[string]any
	if r := do(t, "GET", srv.URL+"/v2/_skiff/users", nil, nil); json.Unmarshal(r.body, &body) != nil || r.status != http.StatusNotFound {
		t.Errorf("GET users without auth: %d %s", r.status, r.body)
	}
}
