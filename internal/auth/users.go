package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

const userKeyPrefix = "user/"

// bcryptCost is bcrypt's default: about 50 ms a check here, slow enough
// to make guessing expensive, cheap enough for a token request.
const bcryptCost = bcrypt.DefaultCost

// dummyHash is a bcrypt hash, at bcryptCost, of a password nobody uses.
// A login for a user that does not exist is compared against it so that it
// takes as long to refuse as a wrong password. It is a constant rather
// than computed in NewUsers, which would add a hash's cost (about 50 ms)
// to every cold start of a function and every CLI call.
const dummyHash = "$2a$10$IjJo4Hq9oDpd64NLT52KauTMaZZSGHTQrb5568/2l2hnKVZrRXLsu"

// MaxGrants caps one user's grants: a user is one item in the store
// (DynamoDB: 400 KB), and a grant can name a prefix of 255 bytes.
const MaxGrants = 100

// Errors of the user store.
var (
	ErrNoUser      = errors.New("no such user")
	ErrUserExists  = errors.New("user already exists")
	ErrBadPassword = errors.New("wrong user name or password")
	// ErrNoGrant: Revoke named a prefix the user has no grant on.
	ErrNoGrant = errors.New("no such grant")
	// ErrInvalid marks input the store refuses (a user name, password,
	// prefix or action), so callers can tell it from a storage failure.
	// The error's text says what is wrong and never holds a password.
	ErrInvalid = errors.New("invalid user input")
)

// reasonError is one of the sentinels above with a text of its own: the
// reason alone, fit to show a client.
type reasonError struct {
	msg  string
	kind error
}

func (e *reasonError) Error() string { return e.msg }
func (e *reasonError) Unwrap() error { return e.kind }

func invalidf(format string, args ...any) error {
	return &reasonError{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// User is a person or robot account.
type User struct {
	Name    string    `json:"name"`
	Hash    string    `json:"hash"` // bcrypt of the password or robot secret
	Robot   bool      `json:"robot,omitempty"`
	Admin   bool      `json:"admin,omitempty"`
	Grants  []Grant   `json:"grants,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Version int64     `json:"-"`
}

// Principal returns what u may do when it authenticates itself.
func (u User) Principal() Principal {
	return Principal{Name: u.Name, Admin: u.Admin, Grants: u.Grants}
}

// Users stores users in the settings port.
type Users struct {
	settings storage.Settings
	now      func() time.Time
	verified *verified
	creds    credCache
	// checks counts bcrypt comparisons, for tests.
	checks atomic.Int64
}

// NewUsers returns the user store over settings.
func NewUsers(settings storage.Settings) *Users {
	return &Users{settings: settings, now: time.Now, verified: newVerified()}
}

// ValidateName checks a user name: lower-case letters, digits and . _ -,
// 1 to 64 characters (robots conventionally robot-<name>).
func ValidateName(name string) error {
	if name == "" || len(name) > 64 {
		return invalidf("user name %q must have 1 to 64 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalidf("user name %q may only hold a-z, 0-9, '.', '_' and '-'", name)
		}
	}
	return nil
}

func validatePassword(p string) error {
	if len(p) < 12 {
		return invalidf("the password must have at least 12 characters")
	}
	if len(p) > 72 {
		return invalidf("the password must have at most 72 bytes (bcrypt's limit)")
	}
	return nil
}

// validateActions checks the actions of a grant or a revocation.
func validateActions(actions []string) error {
	for _, a := range actions {
		if a != ActionPull && a != ActionPush && a != ActionDelete {
			return invalidf("unknown action %q (want pull, push or delete)", a)
		}
	}
	return nil
}

func (us *Users) load(ctx context.Context, name string) (User, error) {
	s, err := us.settings.GetSetting(ctx, userKeyPrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return User{}, fmt.Errorf("user %s: %w", name, ErrNoUser)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", name, err)
	}
	var u User
	if err := json.Unmarshal(s.Value, &u); err != nil {
		return User{}, fmt.Errorf("decode user %s: %w", name, err)
	}
	u.Version = s.Version
	return u, nil
}

func (us *Users) store(ctx context.Context, u User, prev int64) error {
	u.Updated = us.now().UTC()
	body, err := json.Marshal(u)
	if err != nil {
		return err
	}
	err = us.settings.PutSetting(ctx, storage.Setting{Key: userKeyPrefix + u.Name, Value: body}, prev)
	us.creds.forget(u.Name) // whatever the outcome: this process re-reads
	if errors.Is(err, storage.ErrConflict) && prev == 0 {
		return fmt.Errorf("user %s: %w", u.Name, ErrUserExists)
	}
	if err != nil {
		return fmt.Errorf("store user %s: %w", u.Name, err)
	}
	return nil
}

// Get returns user name.
func (us *Users) Get(ctx context.Context, name string) (User, error) { return us.load(ctx, name) }

// List returns every user in lexical order of name.
func (us *Users) List(ctx context.Context) ([]User, error) {
	var out []User
	err := storage.EachSetting(ctx, us.settings, userKeyPrefix, func(s storage.Setting) error {
		var u User
		if err := json.Unmarshal(s.Value, &u); err != nil {
			return fmt.Errorf("decode %s: %w", s.Key, err)
		}
		u.Version = s.Version
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// Add creates a user with a password (a robot's secret for robots).
func (us *Users) Add(ctx context.Context, name, password string, robot, admin bool) (User, error) {
	if err := ValidateName(name); err != nil {
		return User{}, err
	}
	if err := validatePassword(password); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	u := User{Name: name, Hash: string(hash), Robot: robot, Admin: admin, Created: us.now().UTC()}
	if err := us.store(ctx, u, 0); err != nil {
		return User{}, err
	}
	return us.load(ctx, name)
}

// update applies fn to user name with a conditional write, retrying a
// lost race.
func (us *Users) update(ctx context.Context, name string, fn func(*User) error) (User, error) {
	for range 5 {
		u, err := us.load(ctx, name)
		if err != nil {
			return User{}, err
		}
		if err := fn(&u); err != nil {
			return User{}, err
		}
		err = us.store(ctx, u, u.Version)
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return User{}, err
		}
		return us.load(ctx, name)
	}
	return User{}, fmt.Errorf("user %s keeps changing under us; retry", name)
}

// SetPassword replaces a user's password.
func (us *Users) SetPassword(ctx context.Context, name, password string) (User, error) {
	if err := validatePassword(password); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	return us.update(ctx, name, func(u *User) error { u.Hash = string(hash); return nil })
}

// GrantAccess gives name actions on the repositories under prefix ("*"
// for all), merging with an existing grant on the same prefix.
func (us *Users) GrantAccess(ctx context.Context, name, prefix string, actions []string) (User, error) {
	p, err := normalizeGrantPrefix(prefix)
	if err != nil {
		return User{}, err
	}
	if err := validateActions(actions); err != nil {
		return User{}, err
	}
	if len(actions) == 0 {
		return User{}, invalidf("a grant needs at least one action (pull, push or delete)")
	}
	return us.update(ctx, name, func(u *User) error {
		for i, g := range u.Grants {
			if g.Prefix == p {
				acts := append(slices.Clone(g.Actions), actions...)
				slices.Sort(acts)
				u.Grants[i].Actions = slices.Compact(acts)
				return nil
			}
		}
		if len(u.Grants) >= MaxGrants {
			return invalidf("user %s has %d grants, the most one user may have; grant on a shorter prefix or revoke one first", name, len(u.Grants))
		}
		acts := slices.Clone(actions)
		slices.Sort(acts)
		u.Grants = append(u.Grants, Grant{Prefix: p, Actions: slices.Compact(acts)})
		return nil
	})
}

// Revoke removes actions (all when none are named) from name's grant on
// prefix.
func (us *Users) Revoke(ctx context.Context, name, prefix string, actions []string) (User, error) {
	p, err := normalizeGrantPrefix(prefix)
	if err != nil {
		return User{}, err
	}
	if err := validateActions(actions); err != nil {
		return User{}, err
	}
	return us.update(ctx, name, func(u *User) error {
		var kept []Grant
		found := false
		for _, g := range u.Grants {
			if g.Prefix != p {
				kept = append(kept, g)
				continue
			}
			found = true
			if len(actions) > 0 {
				g.Actions = slices.DeleteFunc(g.Actions, func(a string) bool { return slices.Contains(actions, a) })
				if len(g.Actions) > 0 {
					kept = append(kept, g)
				}
			}
		}
		if !found {
			return &reasonError{msg: fmt.Sprintf("user %s has no grant on %s", name, p), kind: ErrNoGrant}
		}
		u.Grants = kept
		return nil
	})
}

// SetAdmin gives or takes the admin role.
func (us *Users) SetAdmin(ctx context.Context, name string, admin bool) (User, error) {
	return us.update(ctx, name, func(u *User) error { u.Admin = admin; return nil })
}

// Delete removes a user. A user that changed between the read and the
// conditional delete is read again; one that vanished is ErrNoUser.
func (us *Users) Delete(ctx context.Context, name string) error {
	for range 5 {
		u, err := us.load(ctx, name)
		if err != nil {
			return err
		}
		err = us.settings.DeleteSetting(ctx, userKeyPrefix+name, u.Version)
		us.creds.forget(name)
		switch {
		case errors.Is(err, storage.ErrConflict):
			continue
		case errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("user %s: %w", name, ErrNoUser)
		case err != nil:
			return fmt.Errorf("delete user %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("user %s keeps changing under us; retry", name)
}

// Authenticate checks name's password with no limit on attempts (the
// CLI's checks and tests; servers use Login).
func (us *Users) Authenticate(ctx context.Context, name, password string) (User, error) {
	return us.Login(ctx, nil, name, password, "")
}

// Login checks name's password under l's limits (nil: none), for the user
// and for the source address addr. Every failure is ErrBadPassword, and
// takes the same time whether or not the user exists; a *LimitError means
// no check ran. The user is always read from the store (grants and
// deletions take effect at once); only the bcrypt check of a password that
// passed recently is skipped (see verified), and such a login only reads
// the limits: it costs no attempt. A name no user can have is refused
// without reading the store (it could not be a key there), counting
// against the address only.
func (us *Users) Login(ctx context.Context, l *Limiter, name, password, addr string) (User, error) {
	keys := []string{AddrKey(addr)}
	if ValidateName(name) != nil {
		if _, err := l.Reserve(ctx, keys...); err != nil {
			return User{}, err
		}
		return User{}, ErrBadPassword
	}
	keys = append(keys, "user:"+name)
	u, err := us.load(ctx, name)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNoUser) {
		return User{}, err
	}
	now := us.now()
	if exists && us.verified.seen(u.Name, u.Hash, password, now) {
		if err := l.Blocked(ctx, keys...); err != nil {
			return User{}, err
		}
		return u, nil
	}
	res, err := l.Reserve(ctx, keys...)
	if err != nil {
		return User{}, err
	}
	us.checks.Add(1)
	if !exists {
		_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
		return User{}, ErrBadPassword
	}
	if bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte(password)) != nil {
		return User{}, ErrBadPassword // the attempt stays used
	}
	us.verified.add(u.Name, u.Hash, password, now)
	// A release that fails leaves one attempt too many counted in this
	// window: at worst the user is refused a little early, never given an
	// extra guess. The login itself succeeded.
	_ = res.Release(context.WithoutCancel(ctx))
	return u, nil
}

func normalizeGrantPrefix(prefix string) (string, error) {
	if prefix == "*" {
		return prefix, nil
	}
	p, err := oci.NormalizePrefix(prefix)
	if err != nil {
		return "", invalidf("%s", err.Error())
	}
	return p, nil
}
