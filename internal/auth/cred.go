package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// CredTTL bounds how long a token keeps working after its user's
// credential changed (password set, user deleted or re-created) on another
// process: the time a cached credential stamp is believed, as index
// policies are (internal/policy). On the process that made the change it
// stops at once.
const CredTTL = 10 * time.Second

// credCacheMax bounds the cache; past it, it starts over.
const credCacheMax = 4096

// ErrStaleToken: the token's user is gone or changed its credential since
// the token was issued.
var ErrStaleToken = errors.New("the token's credentials are no longer valid")

// Cred is the stamp of u's current credential, carried by its tokens: it
// changes when the password is set (a new bcrypt hash, with a new salt)
// and when the user is deleted and created again (a new creation time), so
// a token outlives neither. It is a digest of the bcrypt hash, which the
// token shows to its bearer: nothing a password can be guessed from, since
// the hash's salt stays unknown.
func (u User) Cred() string {
	h := sha256.New()
	h.Write([]byte("skiff credential\n" + u.Name + "\n" + u.Created.UTC().Format(time.RFC3339Nano) + "\n" + u.Hash))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

type credEntry struct {
	cred string // "" when the user does not exist
	at   time.Time
}

// credCache remembers users' credential stamps for CredTTL.
type credCache struct {
	mu sync.Mutex
	m  map[string]credEntry
}

func (c *credCache) get(name string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || now.Sub(e.at) >= CredTTL || now.Before(e.at) {
		return "", false
	}
	return e.cred, true
}

func (c *credCache) put(name, cred string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= credCacheMax {
		c.m = map[string]credEntry{}
	}
	c.m[name] = credEntry{cred: cred, at: now}
}

func (c *credCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}

// CheckCred returns ErrStaleToken unless name exists with the credential
// stamp cred (a token's). The stamp is read through a cache of at most
// CredTTL: one store read per user per CredTTL per process.
func (us *Users) CheckCred(ctx context.Context, name, cred string) error {
	now := us.now()
	cur, ok := us.creds.get(name, now)
	if !ok {
		u, err := us.load(ctx, name)
		switch {
		case err == nil:
			cur = u.Cred()
		case errors.Is(err, ErrNoUser):
			cur = ""
		default:
			return err
		}
		us.creds.put(name, cur, now)
	}
	if cur == "" || cred != cur {
		return ErrStaleToken
	}
	return nil
}
