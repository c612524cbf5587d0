// Package mirror holds mirror rules, what to copy from where to where, and
// the mirror set file that lists them:
//
//	# skiff mirror run mirror.yaml
//	defaults:
//	  platforms: [linux/amd64]
//	  referrers: true
//	  digestTags: true
//	mirrors:
//	  - source: quay.io/org/app        # a repository: the tags matching
//	    target: registry.example.com/mirror/app
//	    tags: 'v1\.[0-9]+'
//	  - source: docker.io/library/alpine:3.20   # one image
//	    target: registry.example.com/mirror/alpine
//	    platforms: [linux/amd64, linux/arm64]
//
// It is the shape of regsync's sync list and oc-mirror's additionalImages,
// no bigger: a rule says its source and target and what it selects; the
// defaults fill what a rule leaves out.
package mirror

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/skiff-registry/skiff/internal/imageref"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Rule is what to mirror from where to where.
type Rule struct {
	// Name names a rule stored in the registry (the sync's rules); a set
	// file's rules have none.
	Name string `json:"name,omitempty"`
	// Source is an image (host/repo:tag or @digest) or, with Tags, a
	// repository.
	Source string `json:"source"`
	// Target is a repository (the source's tags kept) or, for one image, a
	// reference of its own; a stored rule's names one of this registry,
	// without its host (mirror/alpine).
	Target string `json:"target"`
	// Tags selects, by a regular expression over the whole tag, the tags
	// of a source repository.
	Tags string `json:"tags,omitempty"`
	// Platforms selects the children of an index (none: all of them).
	Platforms []string `json:"platforms,omitempty"`
	// Referrers and DigestTags bring signatures, SBOMs and attestations.
	Referrers  bool `json:"referrers,omitempty"`
	DigestTags bool `json:"digestTags,omitempty"`
	// Credentials names the AWS Secrets Manager secret holding the
	// source's {"username": ..., "password": ...} (a stored rule; none:
	// anonymous).
	Credentials string `json:"credentials,omitempty"`
}

// Check reports what is wrong with the rule, with no request: a missing
// source or target, a source that must be a repository (with tags) or an
// image (without), a tag pattern that does not compile, a platform the
// image spec does not know.
func (r Rule) Check() error {
	if strings.TrimSpace(r.Source) == "" {
		return errors.New("no source")
	}
	if strings.TrimSpace(r.Target) == "" {
		return errors.New("no target")
	}
	for _, p := range r.Platforms {
		if _, err := oci.ParseKnownPlatform(p); err != nil {
			return err
		}
	}
	if r.Tags != "" {
		if _, err := imageref.CompileTagPattern(r.Tags); err != nil {
			return fmt.Errorf("tags: %w", err)
		}
	}
	target := r.Target
	if r.Name != "" {
		target = LocalHost + "/" + target
	}
	_, err := imageref.Parse(r.Source, target, r.Tags != "")
	return err
}

// LocalHost stands for this registry in a stored rule's target, which
// names a repository of the registry the sync writes into, without host.
const LocalHost = "skiff.local"

// Entry is a rule of a set file, with the line it starts on.
type Entry struct {
	Rule
	Line int
	N    int // its index in mirrors
}

// Name names the entry in a message: its place in the file and source.
func (e Entry) Name() string {
	return fmt.Sprintf("line %d: mirrors[%d] (%s)", e.Line, e.N, e.Source)
}

// Set is a mirror set file.
type Set struct {
	Entries []Entry
}

// Fields of a rule in a set file, and of its defaults.
var (
	ruleFields    = []string{"source", "target", "tags", "platforms", "referrers", "digestTags"}
	defaultFields = []string{"platforms", "referrers", "digestTags"}
	topFields     = []string{"defaults", "mirrors"}
)

// ParseSet parses a mirror set file. Every mistake is reported (joined),
// each naming its line; a set with any is refused whole.
func ParseSet(b []byte) (Set, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Set{}, fmt.Errorf("not a mirror set: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return Set{}, errors.New("not a mirror set: want a mapping with mirrors: (and defaults:)")
	}
	p := &parser{}
	var defaults Rule
	var set Set
	top := p.mapping(doc.Content[0], "the mirror set", topFields)
	if n := top["defaults"]; n != nil {
		p.rule(n, "defaults", defaultFields, &defaults)
	}
	mirrors := top["mirrors"]
	switch {
	case mirrors == nil:
		p.errorf(doc.Content[0], "the mirror set has no mirrors:")
	case mirrors.Kind != yaml.SequenceNode:
		p.errorf(mirrors, "mirrors: want a list of rules")
	case len(mirrors.Content) == 0:
		p.errorf(mirrors, "mirrors: the list is empty")
	default:
		for i, n := range mirrors.Content {
			e := Entry{Rule: defaults, Line: n.Line, N: i}
			e.Platforms = slices.Clone(defaults.Platforms)
			if !p.rule(n, "mirrors["+strconv.Itoa(i)+"]", ruleFields, &e.Rule) {
				continue
			}
			if err := e.Check(); err != nil {
				p.errs = append(p.errs, fmt.Errorf("%s: %w", e.Name(), err))
				continue
			}
			set.Entries = append(set.Entries, e)
		}
	}
	if len(p.errs) > 0 {
		return Set{}, errors.Join(p.errs...)
	}
	return set, nil
}

type parser struct {
	errs []error
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...)))
}

// mapping returns the fields of mapping node n, reporting those not in
// known and those given twice.
func (p *parser) mapping(n *yaml.Node, what string, known []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping of %s", what, strings.Join(known, ", "))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(known, k.Value):
			p.errorf(k, "%s: unknown field %q (want %s)", what, k.Value, strings.Join(known, ", "))
		case out[k.Value] != nil:
			p.errorf(k, "%s: %s given twice", what, k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

// rule decodes the fields of n into r (over what r has); false if any is
// wrong.
func (p *parser) rule(n *yaml.Node, what string, known []string, r *Rule) bool {
	before := len(p.errs)
	fields := p.mapping(n, what, known)
	for _, k := range known {
		v := fields[k]
		if v == nil {
			continue
		}
		field := what + "." + k
		switch k {
		case "source", "target", "tags":
			var s string
			if v.Kind != yaml.ScalarNode || v.Decode(&s) != nil {
				p.errorf(v, "%s: want a string", field)
				continue
			}
			switch k {
			case "source":
				r.Source = s
			case "target":
				r.Target = s
			default:
				r.Tags = s
			}
		case "platforms":
			var ps []string
			if v.Kind != yaml.SequenceNode || v.Decode(&ps) != nil {
				p.errorf(v, "%s: want a list of os/arch[/variant]", field)
				continue
			}
			r.Platforms = ps
		case "referrers", "digestTags":
			var b bool
			if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
				p.errorf(v, "%s: want true or false", field)
				continue
			}
			if k == "referrers" {
				r.Referrers = b
			} else {
				r.DigestTags = b
			}
		}
	}
	return len(p.errs) == before
}
