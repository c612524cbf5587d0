// Package auth holds Skiff's access control: users and robot accounts with
// bcrypt-hashed secrets and grants on repository prefixes, the Docker/OCI
// token flow's scopes and short-lived signed tokens (JWT, HS256), and the
// decision of what a caller may do.
//
// Users live in the settings port under user/<name>; one conditional
// write per change, like index policies.
package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// Actions on a repository.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
)

// Scope types and the registry-wide resources.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
	// Catalog is registry:catalog:* (listing repositories).
	Catalog = "catalog"
	// Admin is registry:admin:* (the operator API).
	Admin = "admin"
)

// Scope is a resource and actions, as the token flow spells it:
// repository:<name>:pull,push or registry:catalog:*.
type Scope struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// ParseScope parses one scope string. Names may contain ':' only in
// registry hosts, which Skiff's repository names never do.
func ParseScope(s string) (Scope, error) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Scope{}, fmt.Errorf("scope %q is not type:name:actions", s)
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return Scope{}, fmt.Errorf("scope %q is not type:name:actions", s)
	}
	name, acts := rest[:i], rest[i+1:]
	sc := Scope{Type: typ, Name: name}
	for _, a := range strings.Split(acts, ",") {
		if a != "" && !slices.Contains(sc.Actions, a) {
			sc.Actions = append(sc.Actions, a)
		}
	}
	switch typ {
	case TypeRepository:
		if err := oci.ValidateRepository(name); err != nil {
			return Scope{}, fmt.Errorf("scope %q: %w", s, err)
		}
		for _, a := range sc.Actions {
			if a != ActionPull && a != ActionPush && a != ActionDelete && a != "*" {
				return Scope{}, fmt.Errorf("scope %q: unknown action %q", s, a)
			}
		}
	case TypeRegistry:
		if name != Catalog && name != Admin {
			return Scope{}, fmt.Errorf("scope %q: unknown registry resource %q", s, name)
		}
	default:
		return Scope{}, fmt.Errorf("scope %q: unknown type %q", s, typ)
	}
	if len(sc.Actions) == 0 {
		return Scope{}, fmt.Errorf("scope %q names no action", s)
	}
	return sc, nil
}

// MaxScopes caps the distinct resources one token request may ask for
// (after merging repeats): a push or a copy asks for one to a few, and the
// token, which lists what it grants, stays small.
const MaxScopes = 50

// ErrTooManyScopes: a token request asked for more than MaxScopes
// resources.
var ErrTooManyScopes = fmt.Errorf("a token request may ask for at most %d scopes", MaxScopes)

// ParseScopes reads the scope parameters of a token request, each a
// space-separated list: scopes that do not parse are left out (a token
// grants a subset anyway), and repeats of a resource are merged into one
// scope with the union of their actions, in their order. More than
// MaxScopes distinct resources is ErrTooManyScopes.
func ParseScopes(fields []string) ([]Scope, error) {
	var out []Scope
	at := map[[2]string]int{}
	for _, field := range fields {
		for _, s := range strings.Fields(field) {
			sc, err := ParseScope(s)
			if err != nil {
				continue
			}
			k := [2]string{sc.Type, sc.Name}
			i, seen := at[k]
			if !seen {
				if len(out) == MaxScopes {
					return nil, ErrTooManyScopes
				}
				at[k] = len(out)
				out = append(out, sc)
				continue
			}
			for _, a := range sc.Actions {
				if !slices.Contains(out[i].Actions, a) {
					out[i].Actions = append(out[i].Actions, a)
				}
			}
		}
	}
	return out, nil
}

// String formats s as the token flow spells it.
func (s Scope) String() string {
	return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// Grant gives actions on the repositories under a prefix (the repository
// of that name and everything below it, as index policies).
type Grant struct {
	Prefix  string   `json:"prefix"`
	Actions []string `json:"actions"`
}

func covers(prefix, repo string) bool {
	return prefix == "*" || repo == prefix || strings.HasPrefix(repo, prefix+"/")
}

// Principal is who makes a request and what they may do.
type Principal struct {
	// Name is the user, or "" for an anonymous caller.
	Name  string
	Admin bool
	// Grants are the user's grants (Basic authentication).
	Grants []Grant
	// Token is set when the caller presented a token: then only its
	// Access counts, the subset granted when it was issued.
	Token  bool
	Access []Scope
	// AnonymousPull are the prefixes anyone may pull from.
	AnonymousPull []string
}

// Anonymous reports whether p presented no credentials.
func (p Principal) Anonymous() bool { return p.Name == "" && !p.Token }

// Allows reports whether p may do action on the resource (typ, name).
func (p Principal) Allows(typ, name, action string) bool {
	if typ == TypeRepository && action == ActionPull {
		for _, pre := range p.AnonymousPull {
			if covers(pre, name) {
				return true
			}
		}
	}
	if p.Token {
		for _, s := range p.Access {
			if s.Type == typ && s.Name == name && (slices.Contains(s.Actions, action) || slices.Contains(s.Actions, "*")) {
				return true
			}
		}
		return false
	}
	if p.Name == "" {
		return false
	}
	if p.Admin {
		return true
	}
	switch typ {
	case TypeRegistry:
		return name == Catalog // any user may list what they can pull
	case TypeRepository:
		for _, g := range p.Grants {
			if covers(g.Prefix, name) && (slices.Contains(g.Actions, action) || slices.Contains(g.Actions, "*")) {
				return true
			}
		}
	}
	return false
}

// CanPull reports whether p's own grants (not a token's subset) let it
// pull repo: used to filter the catalog.
func (p Principal) CanPull(repo string) bool {
	q := p
	q.Token = false
	return q.Allows(TypeRepository, repo, ActionPull)
}

// Grant returns the subset of the requested scopes that p may have.
func (p Principal) Grant(requested []Scope) []Scope {
	var out []Scope
	for _, s := range requested {
		g := Scope{Type: s.Type, Name: s.Name}
		for _, a := range s.Actions {
			if a == "*" {
				for _, each := range []string{ActionPull, ActionPush, ActionDelete} {
					if s.Type == TypeRepository && p.Allows(s.Type, s.Name, each) && !slices.Contains(g.Actions, each) {
						g.Actions = append(g.Actions, each)
					}
				}
				if s.Type == TypeRegistry && p.Allows(s.Type, s.Name, "*") && !slices.Contains(g.Actions, "*") {
					g.Actions = append(g.Actions, "*")
				}
				continue
			}
			if p.Allows(s.Type, s.Name, a) && !slices.Contains(g.Actions, a) {
				g.Actions = append(g.Actions, a)
			}
		}
		if len(g.Actions) > 0 {
			out = append(out, g)
		}
	}
	return out
}
