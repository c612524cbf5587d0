package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// User management in the operator API (admins only, like everything under
// /v2/_skiff/). It needs authentication on: without it nobody logs in, and
// a user API open to anyone would be worse than none.
//
//	GET    /v2/_skiff/users                           {"users":[UserInfo...]}
//	GET    /v2/_skiff/users/<name>                    UserInfo
//	PUT    /v2/_skiff/users/<name>                    201 UserInfo (body: {"password","robot","admin"}); 409 if it exists
//	PUT    /v2/_skiff/users/<name>/password           UserInfo (body: {"password"}); PATCH too
//	POST   /v2/_skiff/users/<name>/grants             UserInfo (body: {"prefix","actions"}), merged with a grant on the same prefix
//	DELETE /v2/_skiff/users/<name>/grants?prefix=P[&actions=a,b]   UserInfo (no actions: the whole grant)
//	DELETE /v2/_skiff/users/<name>                    UserInfo as it was
//
// A user name never contains '/', so the path is unambiguous. Passwords
// travel only in request bodies, which are never logged, and no answer
// holds a password or its hash.

// User route kinds.
const (
	routeUsers        = "operator-users"
	routeUser         = "operator-user"
	routeUserPassword = "operator-user-password"
	routeUserGrants   = "operator-user-grants"
)

// User API error codes (not the spec's: every use sets its status).
const (
	// CodeUserInvalid: a user name, password, prefix, action or request
	// body is invalid (400; 413 for an oversize body).
	CodeUserInvalid oci.ErrorCode = "USER_INVALID"
	// CodeUserUnknown: no user has that name (404).
	CodeUserUnknown oci.ErrorCode = "USER_UNKNOWN"
	// CodeUserExists: creating a user that exists (409).
	CodeUserExists oci.ErrorCode = "USER_EXISTS"
	// CodeGrantUnknown: revoking on a prefix the user has no grant on (404).
	CodeGrantUnknown oci.ErrorCode = "GRANT_UNKNOWN"
)

// maxUserBody bounds a user request body: a password is at most 72 bytes.
const maxUserBody = 4 << 10

// UserInfo is what the API shows of a user: never the password hash.
type UserInfo struct {
	Name    string       `json:"name"`
	Robot   bool         `json:"robot"`
	Admin   bool         `json:"admin"`
	Grants  []auth.Grant `json:"grants"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
}

// NewUserInfo returns the public view of u.
func NewUserInfo(u auth.User) UserInfo {
	grants := u.Grants
	if grants == nil {
		grants = []auth.Grant{}
	}
	return UserInfo{Name: u.Name, Robot: u.Robot, Admin: u.Admin, Grants: grants, Created: u.Created, Updated: u.Updated}
}

// UserList is the body of GET /v2/_skiff/users.
type UserList struct {
	Users []UserInfo `json:"users"`
}

// UserRequest is the body of PUT /v2/_skiff/users/<name>.
type UserRequest struct {
	Password string `json:"password"`
	Robot    bool   `json:"robot,omitempty"`
	Admin    bool   `json:"admin,omitempty"`
}

// PasswordRequest is the body of PUT /v2/_skiff/users/<name>/password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// GrantRequest is the body of POST /v2/_skiff/users/<name>/grants.
type GrantRequest struct {
	Prefix  string   `json:"prefix"`
	Actions []string `json:"actions"`
}

// parseUserRoute matches the path after /v2/_skiff/users.
func parseUserRoute(rest string) route {
	rt := route{kind: routeOperatorNoSuch, group: GroupCatalog}
	if rest == "" {
		rt.kind = routeUsers
		return rt
	}
	name, sub, _ := strings.Cut(rest, "/")
	rt.arg = name
	switch sub {
	case "":
		rt.kind = routeUser
	case "password":
		rt.kind = routeUserPassword
	case "grants":
		rt.kind = routeUserGrants
	}
	return rt
}

func isUserRoute(kind string) bool { return strings.HasPrefix(kind, "operator-user") }

// usersOff answers the user routes of a server without authentication.
func usersOff() error {
	return oci.Errorf(oci.CodeUnsupported,
		"user management needs authentication on: start the server with `skiff serve --auth --operator-api`; "+
			"before that, add the first admin with `skiff user add NAME --admin --password-stdin --data DIR`").
		WithStatus(http.StatusNotFound)
}

func userInvalid(format string, args ...any) *oci.Error {
	return oci.Errorf(CodeUserInvalid, format, args...).WithStatus(http.StatusBadRequest)
}

// userError maps the user store's errors; anything else is internal.
func userError(name string, err error) error {
	switch {
	case errors.Is(err, auth.ErrNoUser):
		return oci.Errorf(CodeUserUnknown, "there is no user named %s", name).WithStatus(http.StatusNotFound)
	case errors.Is(err, auth.ErrUserExists):
		return oci.Errorf(CodeUserExists, "user %s already exists; change its password with PUT /v2/_skiff/users/%s/password", name, name).WithStatus(http.StatusConflict)
	case errors.Is(err, auth.ErrNoGrant):
		return oci.Errorf(CodeGrantUnknown, "%s", err.Error()).WithStatus(http.StatusNotFound)
	case errors.Is(err, auth.ErrInvalid):
		// The store's validation text names what is wrong, never a password.
		return userInvalid("%s", err.Error())
	}
	return err
}

// userName validates the name in a route.
func userName(rt route) (string, error) {
	if err := auth.ValidateName(rt.arg); err != nil {
		return "", userInvalid("%s", err.Error())
	}
	return rt.arg, nil
}

// decodeUserBody reads one JSON object into v, refusing unknown fields,
// trailing data and bodies over maxUserBody. Its messages never quote the
// body: it may hold a password.
func decodeUserBody(body io.Reader, v any, example string) error {
	b, err := io.ReadAll(io.LimitReader(body, maxUserBody+1))
	if err != nil {
		return fmt.Errorf("read user body: %w", err)
	}
	if len(b) > maxUserBody {
		return oci.Errorf(CodeUserInvalid, "the body exceeds %d bytes", maxUserBody).WithStatus(http.StatusRequestEntityTooLarge)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return userInvalid("the body is empty; send a JSON object such as %s", example)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			return userInvalid("field %q has the wrong type; send a JSON object such as %s", typeErr.Field, example)
		case errors.As(err, &syntaxErr):
			return userInvalid("the body is not valid JSON (at byte %d); send an object such as %s", syntaxErr.Offset, example)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return userInvalid("%s; send a JSON object such as %s", strings.TrimPrefix(err.Error(), "json: "), example)
		}
		return userInvalid("the body is not a JSON object; send one such as %s", example)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return userInvalid("the body has data after the JSON object; send exactly one such as %s", example)
	}
	return nil
}

// auditUser records a change to a user: who, what, never a secret.
func (a *API) auditUser(r *http.Request, action, name string, attrs ...any) {
	by, _ := principal(r.Context())
	args := append([]any{"request_id", requestInfo(r.Context()).id, "by", by.Name, "address", a.clientAddr(r), "action", action, "name", name}, attrs...)
	a.opts.log.InfoContext(r.Context(), "user change", args...)
}

// listUsers answers GET /v2/_skiff/users.
func (a *API) listUsers(w http.ResponseWriter, r *http.Request, _ route) error {
	us, err := a.opts.auth.Users.List(r.Context())
	if err != nil {
		return err
	}
	out := UserList{Users: []UserInfo{}}
	for _, u := range us {
		out.Users = append(out.Users, NewUserInfo(u))
	}
	writeJSON(w, r, http.StatusOK, "application/json", out)
	return nil
}

// getUser answers GET /v2/_skiff/users/<name>.
func (a *API) getUser(w http.ResponseWriter, r *http.Request, rt route) error {
	name, err := userName(rt)
	if err != nil {
		return err
	}
	u, err := a.opts.auth.Users.Get(r.Context(), name)
	if err != nil {
		return userError(name, err)
	}
	writeJSON(w, r, http.StatusOK, "application/json", NewUserInfo(u))
	return nil
}

// putUser answers PUT /v2/_skiff/users/<name>: it creates the user, and
// refuses one that exists (a password change has its own route, so a
// retried create cannot silently reset a password).
func (a *API) putUser(w http.ResponseWriter, r *http.Request, rt route) error {
	name, err := userName(rt)
	if err != nil {
		return err
	}
	var in UserRequest
	if err := decodeUserBody(r.Body, &in, `{"password":"...","robot":false,"admin":false}`); err != nil {
		return err
	}
	if in.Password == "" {
		return userInvalid("the body needs a password (a robot's secret for robots)")
	}
	u, err := a.opts.auth.Users.Add(r.Context(), name, in.Password, in.Robot, in.Admin)
	if err != nil {
		return userError(name, err)
	}
	a.auditUser(r, "create", name, "robot", u.Robot, "admin", u.Admin)
	w.Header().Set("Location", "/v2/_skiff/users/"+name)
	writeJSON(w, r, http.StatusCreated, "application/json", NewUserInfo(u))
	return nil
}

// setPassword answers PUT or PATCH /v2/_skiff/users/<name>/password.
func (a *API) setPassword(w http.ResponseWriter, r *http.Request, rt route) error {
	name, err := userName(rt)
	if err != nil {
		return err
	}
	var in PasswordRequest
	if err := decodeUserBody(r.Body, &in, `{"password":"..."}`); err != nil {
		return err
	}
	if in.Password == "" {
		return userInvalid("the body needs the new password")
	}
	u, err := a.opts.auth.Users.SetPassword(r.Context(), name, in.Password)
	if err != nil {
		return userError(name, err)
	}
	a.auditUser(r, "password", name)
	writeJSON(w, r, http.StatusOK, "application/json", NewUserInfo(u))
	return nil
}

// grant answers POST /v2/_skiff/users/<name>/grants.
func (a *API) grant(w http.ResponseWriter, r *http.Request, rt route) error {
	name, err := userName(rt)
	if err != nil {
		return err
	}
	var in GrantRequest
	if err := decodeUserBody(r.Body, &in, `{"prefix":"team/","actions":["pull","push"]}`); err != nil {
		return err
	}
	if in.Prefix == "" {
		return userInvalid(`the body needs a prefix (a repository, a namespace such as team/, or "*" for all)`)
	}
	u, err := a.opts.auth.Users.GrantAccess(r.Context(), name, in.Prefix, in.Actions)
	if err != nil {
		return userError(name, err)
	}
	a.auditUser(r, "grant", name, "prefix", in.Prefix, "actions", strings.Join(in.Actions, ","))
	writeJSON(w, r, http.StatusOK, "application/json", NewUserInfo(u))
	return nil
}

// revoke answers DELETE /v2/_skiff/users/<name>/grants?prefix=P[&actions=a,b].
func (a *API) revoke(w http.ResponseWriter, r *http.Request, rt route) error {
	name, err := userName(rt)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	prefix := q.Get("prefix")
	if prefix == "" {
		return userInvalid("say which grant: ?prefix=P, and &actions=pull,push to take only some actions")
	}
	var actions []string
	for _, v := range q["actions"] {
		for _, act := range strings.Split(v, ",") {
			if act = strings.TrimSpace(act); act != "" {
				actions = append(actions, act)
			}
		}
	}
	u, err := a.opts.auth.Users.Revoke(r.Context(), name, prefix, actions)
	if err != nil {
		return userError(name, err)
	}
	a.auditUser(r, "revoke", name, "prefix", prefix, "actions", strings.Join(actions, ","))
	writeJSON(w, r, http.StatusOK, "application/json", NewUserInfo(u))
	return nil
}

// deleteUser answers DELETE /v2/_skiff/users/<name> with the user as it
// was. An admin cannot delete the account it is authenticated as, so the
// last admin cannot lock everyone out of the operator API by mistake.
func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, rt route) error {
	name, err := userName(rt)
	if err != nil {
		return err
	}
	if p, ok := principal(r.Context()); ok && p.Name == name {
		return userInvalid("you are authenticated as %s: delete that account as another admin", name)
	}
	u, err := a.opts.auth.Users.Get(r.Context(), name)
	if err != nil {
		return userError(name, err)
	}
	if err := a.opts.auth.Users.Delete(r.Context(), name); err != nil {
		return userError(name, err)
	}
	a.auditUser(r, "delete", name)
	writeJSON(w, r, http.StatusOK, "application/json", NewUserInfo(u))
	return nil
}
