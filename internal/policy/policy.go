// Package policy stores the per-repository rules, index policies
// (pkg/oci.Policy) and retention rules (pkg/oci.Retention), in the
// settings port, with who changed each one, when, and what it replaced,
// and caches the index policies for the manifest PUT path with a short,
// documented bound on staleness.
//
// Layout in the settings store (kind: policy or retention):
//
//	<kind>/<prefix>                    Record: the live rule (or a deletion tombstone)
//	audit/<kind>/<prefix>/<time>-<id>  Change: one per change, append-only
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

// ErrNotFound is returned for a prefix without a live rule.
var ErrNotFound = errors.New("no rule for this prefix")

// Rule is what a store holds: a value with a prefix, put in canonical
// form by Validate.
type Rule[P any] interface {
	Validate() (P, error)
	RulePrefix() string
	WithPrefix(prefix string) P
}

// RecordOf is a stored rule and the last change to it. The rule is under
// "policy" for either kind, so a client reads both alike.
type RecordOf[P any] struct {
	Policy    P         `json:"policy"`
	Deleted   bool      `json:"deleted,omitempty"`
	UpdatedBy string    `json:"updatedBy"`
	UpdatedAt time.Time `json:"updatedAt"`
	Previous  *P        `json:"previous,omitempty"`
	Version   int64     `json:"version"`
}

// ChangeOf is one line of a prefix's history.
type ChangeOf[P any] struct {
	Prefix   string    `json:"prefix"`
	Action   string    `json:"action"` // "set" or "delete"
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Previous *P        `json:"previous,omitempty"`
	New      *P        `json:"new,omitempty"`
}

// StoreOf reads and changes the rules of one kind.
type StoreOf[P Rule[P]] struct {
	kind     string // "policy" or "retention": the key prefix and the word in messages
	settings storage.Settings
	now      func() time.Time
	onChange func()
}

// The index policies.
type (
	Record = RecordOf[oci.Policy]
	Change = ChangeOf[oci.Policy]
	Store  = StoreOf[oci.Policy]
)

// The retention rules.
type (
	RetentionRecord = RecordOf[oci.Retention]
	RetentionChange = ChangeOf[oci.Retention]
	RetentionStore  = StoreOf[oci.Retention]
)

// OnChange registers fn to run after every change made through st (the
// server invalidates its Cache so its own changes apply at once).
func (st *StoreOf[P]) OnChange(fn func()) { st.onChange = fn }

// NewStoreOf returns the rules of another kind over settings, kept under
// <kind>/ and audit/<kind>/ (internal/mirror's rules are one).
func NewStoreOf[P Rule[P]](kind string, settings storage.Settings) *StoreOf[P] {
	return &StoreOf[P]{kind: kind, settings: settings, now: time.Now}
}

// NewStore returns the index policies over settings.
func NewStore(settings storage.Settings) *Store {
	return &Store{kind: "policy", settings: settings, now: time.Now}
}

// NewRetentionStore returns the retention rules over settings.
func NewRetentionStore(settings storage.Settings) *RetentionStore {
	return &RetentionStore{kind: "retention", settings: settings, now: time.Now}
}

func (st *StoreOf[P]) keyPrefix() string   { return st.kind + "/" }
func (st *StoreOf[P]) auditPrefix() string { return "audit/" + st.kind + "/" }

func (st *StoreOf[P]) decode(s storage.Setting) (RecordOf[P], error) {
	var r RecordOf[P]
	if err := json.Unmarshal(s.Value, &r); err != nil {
		return r, fmt.Errorf("decode %s %s: %w", st.kind, s.Key, err)
	}
	r.Version = s.Version
	return r, nil
}

// get returns the stored record of prefix (possibly a tombstone).
func (st *StoreOf[P]) get(ctx context.Context, prefix string) (RecordOf[P], bool, error) {
	s, err := st.settings.GetSetting(ctx, st.keyPrefix()+prefix)
	if errors.Is(err, storage.ErrNotFound) {
		return RecordOf[P]{}, false, nil
	}
	if err != nil {
		return RecordOf[P]{}, false, fmt.Errorf("get %s %s: %w", st.kind, prefix, err)
	}
	r, err := st.decode(s)
	return r, err == nil, err
}

// Get returns the live rule of prefix.
func (st *StoreOf[P]) Get(ctx context.Context, prefix string) (RecordOf[P], error) {
	p, err := oci.NormalizePrefix(prefix)
	if err != nil {
		return RecordOf[P]{}, err
	}
	r, ok, err := st.get(ctx, p)
	if err != nil {
		return r, err
	}
	if !ok || r.Deleted {
		return RecordOf[P]{}, fmt.Errorf("%s %s: %w", st.kind, p, ErrNotFound)
	}
	return r, nil
}

// List returns every live rule in lexical order of prefix.
func (st *StoreOf[P]) List(ctx context.Context) ([]RecordOf[P], error) {
	var out []RecordOf[P]
	err := storage.EachSetting(ctx, st.settings, st.keyPrefix(), func(s storage.Setting) error {
		r, err := st.decode(s)
		if err != nil {
			return err
		}
		if !r.Deleted {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s rules: %w", st.kind, err)
	}
	return out, nil
}

// Set validates p and makes it the rule of its prefix, recording who
// changed it. It retries a lost race against a concurrent change.
func (st *StoreOf[P]) Set(ctx context.Context, p P, who string) (RecordOf[P], error) {
	p, err := p.Validate()
	if err != nil {
		return RecordOf[P]{}, err
	}
	return st.change(ctx, p.RulePrefix(), who, &p)
}

// Delete removes the rule of prefix, recording who did it; the
// repositories under it fall back to a shorter prefix's or the default.
func (st *StoreOf[P]) Delete(ctx context.Context, prefix, who string) (RecordOf[P], error) {
	p, err := oci.NormalizePrefix(prefix)
	if err != nil {
		return RecordOf[P]{}, err
	}
	return st.change(ctx, p, who, nil)
}

func (st *StoreOf[P]) change(ctx context.Context, prefix, who string, next *P) (RecordOf[P], error) {
	if strings.TrimSpace(who) == "" {
		return RecordOf[P]{}, fmt.Errorf("a %s change needs to say who makes it", st.kind)
	}
	for range 5 {
		cur, ok, err := st.get(ctx, prefix)
		if err != nil {
			return RecordOf[P]{}, err
		}
		var prev *P
		if ok && !cur.Deleted {
			prev = &cur.Policy
		}
		if next == nil && prev == nil {
			return RecordOf[P]{}, fmt.Errorf("%s %s: %w", st.kind, prefix, ErrNotFound)
		}
		rec := RecordOf[P]{UpdatedBy: who, UpdatedAt: st.now().UTC(), Previous: prev}
		if next != nil {
			rec.Policy = *next
		} else {
			rec.Policy, rec.Deleted = *prev, true
		}
		body, err := json.Marshal(rec)
		if err != nil {
			return RecordOf[P]{}, err
		}
		err = st.settings.PutSetting(ctx, storage.Setting{Key: st.keyPrefix() + prefix, Value: body}, cur.Version)
		if errors.Is(err, storage.ErrConflict) {
			continue // someone changed it meanwhile: re-read, so Previous is right
		}
		if err != nil {
			return RecordOf[P]{}, fmt.Errorf("store %s %s: %w", st.kind, prefix, err)
		}
		rec.Version = cur.Version + 1
		st.audit(ctx, prefix, rec, next)
		if st.onChange != nil {
			st.onChange()
		}
		return rec, nil
	}
	return RecordOf[P]{}, fmt.Errorf("%s %s keeps changing under us; retry", st.kind, prefix)
}

// audit appends the history line of a change. Best effort: the record
// itself already holds who, when and the previous value.
func (st *StoreOf[P]) audit(ctx context.Context, prefix string, rec RecordOf[P], next *P) {
	c := ChangeOf[P]{Prefix: prefix, Action: "set", By: rec.UpdatedBy, At: rec.UpdatedAt, Previous: rec.Previous, New: next}
	if next == nil {
		c.Action = "delete"
	}
	body, err := json.Marshal(c)
	if err != nil {
		return
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	key := fmt.Sprintf("%s%s/%020d-%s", st.auditPrefix(), prefix, rec.UpdatedAt.UnixNano(), hex.EncodeToString(b[:]))
	_ = st.settings.PutSetting(ctx, storage.Setting{Key: key, Value: body}, 0)
}

// History returns the changes of prefix, oldest first.
func (st *StoreOf[P]) History(ctx context.Context, prefix string) ([]ChangeOf[P], error) {
	p, err := oci.NormalizePrefix(prefix)
	if err != nil {
		return nil, err
	}
	base := st.auditPrefix() + p + "/"
	var out []ChangeOf[P]
	err = storage.EachSetting(ctx, st.settings, base, func(s storage.Setting) error {
		if strings.Contains(s.Key[len(base):], "/") {
			return nil // a prefix below this one (mirror/team under mirror)
		}
		var c ChangeOf[P]
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
