package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedTTL is how long a successful password check is remembered.
// Clients that send Basic credentials on every request (rather than
// trading them for a token) would otherwise pay a bcrypt check, about
// 50 ms, per request: a layer push is several requests.
const verifiedTTL = 5 * time.Minute

// verifiedMax bounds the cache: at most this many entries, 32 bytes of
// key and a time each.
const verifiedMax = 4096

// verified remembers (user, stored hash, password) triples that passed
// bcrypt. It holds neither passwords nor anything a password can be
// recovered from offline: the key is an HMAC under a key drawn at random
// for this process. The stored hash is part of the key, so changing a
// password (or deleting and re-adding the user) misses at once; failures
// are never remembered, so guessing still costs a bcrypt check and the
// login limiter's budget.
type verified struct {
	key []byte
	mu  sync.Mutex
	at  map[[sha256.Size]byte]time.Time // entry -> when it expires
}

func newVerified() *verified {
	k := make([]byte, 32)
	rand.Read(k) // never fails (crypto/rand panics rather than return short)
	return &verified{key: k, at: map[[sha256.Size]byte]time.Time{}}
}

func (v *verified) entry(name, hash, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, v.key)
	// Lengths first, so no two triples share an encoding.
	for _, s := range []string{name, hash, password} {
		var n [4]byte
		l := len(s)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		m.Write(n[:])
		m.Write([]byte(s))
	}
	var e [sha256.Size]byte
	copy(e[:], m.Sum(nil))
	return e
}

// seen reports whether the triple passed bcrypt within verifiedTTL.
func (v *verified) seen(name, hash, password string, now time.Time) bool {
	e := v.entry(name, hash, password)
	v.mu.Lock()
	defer v.mu.Unlock()
	exp, ok := v.at[e]
	if ok && now.After(exp) {
		delete(v.at, e)
		return false
	}
	return ok
}

// add remembers a triple that passed bcrypt.
func (v *verified) add(name, hash, password string, now time.Time) {
	e := v.entry(name, hash, password)
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.at) >= verifiedMax {
		for k, exp := range v.at {
			if now.After(exp) {
				delete(v.at, k)
			}
		}
		// Still full: drop arbitrary entries (map order); they only cost a
		// bcrypt check on their next use.
		for k := range v.at {
			if len(v.at) < verifiedMax {
				break
			}
			delete(v.at, k)
		}
	}
	v.at[e] = now.Add(verifiedTTL)
}
