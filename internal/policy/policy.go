// Package policy stores the per-repository index policies (pkg/oci.Policy)
// in the settings port, with who changed each one, when, and what it
// replaced, and caches them for the manifest PUT path with a short,
// documented bound on staleness.
//
// Layout in the settings store:
//
//	policy/<prefix>                    Record: the live policy (or a deletion tombstone)
//	audit/policy/<prefix>/<time>-<id>  Change: one per change, append-only
//
// A change is one conditional write of the Record (its version guards
// against lost updates, no transaction), which carries who, when and the
// previous value itself; the audit Change is appended after it, so a crash
// in between loses only the history line, never the who/when/previous.
package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

const (
	policyKeyPrefix = "policy/"
	auditKeyPrefix  = "audit/policy/"
)

// ErrNotFound is returned for a prefix without a live policy.
var ErrNotFound = errors.New("no policy for this prefix")

// Record is a stored policy and the last change to it.
type Record struct {
	Policy    oci.Policy  `json:"policy"`
	Deleted   bool        `json:"deleted,omitempty"`
	UpdatedBy string      `json:"updatedBy"`
	UpdatedAt time.Time   `json:"updatedAt"`
	Previous  *oci.Policy `json:"previous,omitempty"`
	Version   int64       `json:"version"`
}

// Change is one line of a prefix's history.
type Change struct {
	Prefix   string      `json:"prefix"`
	Action   string      `json:"action"` // "set" or "delete"
	By       string      `json:"by"`
	At       time.Time   `json:"at"`
	Previous *oci.Policy `json:"previous,omitempty"`
	New      *oci.Policy `json:"new,omitempty"`
}

// Store reads and changes policies.
type Store struct {
	settings storage.Settings
	now      func() time.Time
	onChange func()
}

// OnChange registers fn to run after every change made through st (the
// server invalidates its Cache so its own changes apply at once).
func (st *Store) OnChange(fn func()) { st.onChange = fn }

// NewStore returns a Store over settings.
func NewStore(settings storage.Settings) *Store {
	return &Store{settings: settings, now: time.Now}
}

func decode(s storage.Setting) (Record, error) {
	var r Record
	if err := json.Unmarshal(s.Value, &r); err != nil {
		return r, fmt.Errorf("decode policy %s: %w", s.Key, err)
	}
	r.Version = s.Version
	return r, nil
}

// get returns the stored record of prefix (possibly a tombstone).
func (st *Store) get(ctx context.Context, prefix string) (Record, bool, error) {
	s, err := st.settings.GetSetting(ctx, policyKeyPrefix+prefix)
	if errors.Is(err, storage.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("get policy %s: %w", prefix, err)
	}
	r, err := decode(s)
	return r, err == nil, err
}

// Get returns the live policy of prefix.
func (st *Store) Get(ctx context.Context, prefix string) (Record, error) {
	p, err := oci.NormalizePrefix(prefix)
	if err != nil {
		return Record{}, err
	}
	r, ok, err := st.get(ctx, p)
	if err != nil {
		return r, err
	}
	if !ok || r.Deleted {
		return Record{}, fmt.Errorf("policy %s: %w", p, ErrNotFound)
	}
	return r, nil
}

// List returns every live policy in lexical order of prefix.
func (st *Store) List(ctx context.Context) ([]Record, error) {
	var out []Record
	err := storage.EachSetting(ctx, st.settings, policyKeyPrefix, func(s storage.Setting) error {
		r, err := decode(s)
		if err != nil {
			return err
		}
		if !r.Deleted {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return out, nil
}

// Set validates p and makes it the policy of its prefix, recording who
// changed it. It retries a lost race against a concurrent change.
func (st *Store) Set(ctx context.Context, p oci.Policy, who string) (Record, error) {
	p, err := p.Validate()
	if err != nil {
		return Record{}, err
	}
	return st.change(ctx, p.Prefix, who, &p)
}

// Delete removes the policy of prefix, recording who did it; the
// repositories under it fall back to a shorter prefix or the default.
func (st *Store) Delete(ctx context.Context, prefix, who string) (Record, error) {
	p, err := oci.NormalizePrefix(prefix)
	if err != nil {
		return Record{}, err
	}
	return st.change(ctx, p, who, nil)
}

func (st *Store) change(ctx context.Context, prefix, who string, next *oci.Policy) (Record, error) {
	if strings.TrimSpace(who) == "" {
		return Record{}, errors.New("a policy change needs to say who makes it")
	}
	for range 5 {
		cur, ok, err := st.get(ctx, prefix)
		if err != nil {
			return Record{}, err
		}
		var prev *oci.Policy
		if ok && !cur.Deleted {
			prev = &cur.Policy
		}
		if next == nil && prev == nil {
			return Record{}, fmt.Errorf("policy %s: %w", prefix, ErrNotFound)
		}
		rec := Record{UpdatedBy: who, UpdatedAt: st.now().UTC(), Previous: prev}
		if next != nil {
			rec.Policy = *next
		} else {
			rec.Policy, rec.Deleted = *prev, true
		}
		body, err := json.Marshal(rec)
		if err != nil {
			return Record{}, err
		}
		err = st.settings.PutSetting(ctx, storage.Setting{Key: policyKeyPrefix + prefix, Value: body}, cur.Version)
		if errors.Is(err, storage.ErrConflict) {
			continue // someone changed it meanwhile: re-read, so Previous is right
		}
		if err != nil {
			return Record{}, fmt.Errorf("store policy %s: %w", prefix, err)
		}
		rec.Version = cur.Version + 1
		st.audit(ctx, prefix, rec, next)
		if st.onChange != nil {
			st.onChange()
		}
		return rec, nil
	}
	return Record{}, fmt.Errorf("policy %s keeps changing under us; retry", prefix)
}

// audit appends the history line of a change. Best effort: the record
// itself already holds who, when and the previous value.
func (st *Store) audit(ctx context.Context, prefix string, rec Record, next *oci.Policy) {
	c := Change{Prefix: prefix, Action: "set", By: rec.UpdatedBy, At: rec.UpdatedAt, Previous: rec.Previous, New: next}
	if next == nil {
		c.Action = "delete"
	}
	body, err := json.Marshal(c)
	if err != nil {
		return
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	key := fmt.Sprintf("%s%s/%020d-%s", auditKeyPrefix, prefix, rec.UpdatedAt.UnixNano(), hex.EncodeToString(b[:]))
	_ = st.settings.PutSetting(ctx, storage.Setting{Key: key, Value: body}, 0)
}

// History returns the changes of prefix, oldest first.
func (st *Store) History(ctx context.Context, prefix string) ([]Change, error) {
	p, err := oci.NormalizePrefix(prefix)
	if err != nil {
		return nil, err
	}
	base := auditKeyPrefix + p + "/"
	var out []Change
	err = storage.EachSetting(ctx, st.settings, base, func(s storage.Setting) error {
		if strings.Contains(s.Key[len(base):], "/") {
			return nil // a prefix below this one (mirror/team under mirror)
		}
		var c Change
		if err := json.Unmarshal(s.Value, &c); err != nil {
			return fmt.Errorf("decode %s: %w", s.Key, err)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list history of %s: %w", p, err)
	}
	return out, nil
}
