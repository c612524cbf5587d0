// Package imageref parses the image references a copy names (its source
// and destination) the way the copier reads them, with no request: for
// the copier, and for the mirror rules that are checked where no copier
// runs (the operator API).
package imageref

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Pair is a copy's source and destination: repositories when tags are
// selected, else references (a destination repository takes the source's
// tag or digest).
type Pair struct {
	SrcRepo, DstRepo name.Repository
	Src, Dst         name.Reference
}

// Parse checks src and dst: with tags, both are repositories; without,
// src is an image and dst a repository or an image. Each must name its
// registry.
func Parse(src, dst string, tags bool, opts ...name.Option) (Pair, error) {
	var p Pair
	var err error
	if tags {
		if p.SrcRepo, err = repository(src, "source", opts); err != nil {
			return p, err
		}
		p.DstRepo, err = repository(dst, "destination", opts)
		return p, err
	}
	if p.Src, err = reference(src, "source", opts); err != nil {
		return p, err
	}
	if p.Src == nil {
		return p, fmt.Errorf("source %q names a repository, not an image: add :tag or @digest, or select tags", src)
	}
	if p.Dst, err = reference(dst, "destination", opts); err != nil {
		return p, err
	}
	if p.Dst == nil {
		repo, _ := repository(dst, "destination", opts)
		switch r := p.Src.(type) {
		case name.Tag:
			p.Dst = repo.Tag(r.TagStr())
		case name.Digest:
			p.Dst = repo.Digest(r.DigestStr())
		}
	}
	return p, nil
}

// CompileTagPattern compiles a tag pattern, which matches whole tags.
func CompileTagPattern(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + s + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%q is not a regular expression: %w", s, err)
	}
	return re, nil
}

// reference parses s as an image reference; nil if s is a repository.
func reference(s, role string, opts []name.Option) (name.Reference, error) {
	repo, ref := split(s)
	if _, err := repoOf(repo, s, role, opts); err != nil {
		return nil, err
	}
	if ref == "" {
		return nil, nil
	}
	r, err := name.ParseReference(s, append(slices.Clone(opts), name.StrictValidation)...)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", role, s, err)
	}
	return r, nil
}

func repository(s, role string, opts []name.Option) (name.Repository, error) {
	repo, ref := split(s)
	if ref != "" {
		return name.Repository{}, fmt.Errorf("%s %q must be a repository, without :tag or @digest", role, s)
	}
	return repoOf(repo, s, role, opts)
}

// repoOf parses repo, the repository of whole.
func repoOf(repo, whole, role string, opts []name.Option) (name.Repository, error) {
	if !strings.Contains(repo, "/") {
		return name.Repository{}, fmt.Errorf("%s %q must name its registry: host[:port]/repository", role, whole)
	}
	r, err := name.NewRepository(repo, append(slices.Clone(opts), name.StrictValidation)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%s %q: %w", role, whole, err)
	}
	return r, nil
}

// split splits s into its repository and its ":tag" or "@digest" (empty
// if none).
func split(s string) (repo, ref string) {
	if i := strings.Index(s, "@"); i >= 0 {
		return s[:i], s[i:]
	}
	slash := strings.LastIndex(s, "/")
	if i := strings.LastIndex(s, ":"); i > slash {
		return s[:i], s[i:]
	}
	return s, ""
}
