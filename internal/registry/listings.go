package registry

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// MaxPage caps one listing page: bounded work per request.
const MaxPage = 1000

// clampPage applies MaxPage and asks for one extra item to learn whether
// another page follows.
func clampPage(p storage.Page) storage.Page {
	if p.Limit <= 0 || p.Limit > MaxPage {
		p.Limit = MaxPage
	}
	p.Limit++
	return p
}

// cursor bounds a listing's cursor (the last= of a page) at max, the
// longest name the listing holds, before it reaches the store, whose keys
// are bounded too (DynamoDB: 1,024 bytes). It changes no answer: for names
// of at most max bytes, "after c" and "after c[:max]" hold the same names
// (a name after c[:max] differs from it within max bytes, so it is after
// c too; c[:max] itself is before c and excluded by both).
func cursor(c string, max int) string {
	if len(c) > max {
		return c[:max]
	}
	return c
}

// maxDigestLength is the longest digest ("sha512:" and 128 hex digits),
// the longest name in a referrers listing.
const maxDigestLength = len("sha512:") + 128

// ListTags returns a page of repo's tag names and whether more follow.
// A repository no manifest was ever pushed to is NAME_UNKNOWN, as in
// distribution and the spec's error table; one whose tags were all
// deleted lists none. Only an empty first page pays the existence check.
func (r *Registry) ListTags(ctx context.Context, repo string, p storage.Page) ([]string, bool, error) {
	p.After = cursor(p.After, oci.MaxTagLength)
	q := clampPage(p)
	tags, err := r.meta.ListTags(ctx, repo, q)
	if err != nil {
		return nil, false, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	if len(tags) == 0 && p.After == "" {
		ok, err := r.meta.HasRepository(ctx, repo)
		if err != nil {
			return nil, false, fmt.Errorf("list tags of %s: %w", repo, err)
		}
		if !ok {
			return nil, false, oci.Errorf(oci.CodeNameUnknown, "repository %s is not known to this registry: no manifest was pushed to it", repo)
		}
	}
	more := len(tags) == q.Limit
	if more {
		tags = tags[:q.Limit-1]
	}
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = t.Name
	}
	return names, more, nil
}

// Catalog returns a page of the repository names visible lets through
// (nil: all) and whether more follow. Hidden names are paged past here,
// however many there are, so the page's last name, the next page's
// cursor, is always one the caller may see: a cursor never names a hidden
// repository, and a page is empty only at the end of the listing.
func (r *Registry) Catalog(ctx context.Context, p storage.Page, visible func(string) bool) ([]string, bool, error) {
	p.After = cursor(p.After, oci.MaxRepositoryLength)
	want := clampPage(p).Limit - 1
	q := storage.Page{After: p.After, Limit: want + 1}
	if visible != nil {
		q.Limit = MaxPage + 1 // hidden names would make small pages costly
	}
	var out []string
	for {
		repos, err := r.meta.ListRepositories(ctx, q)
		if err != nil {
			return nil, false, fmt.Errorf("list repositories: %w", err)
		}
		for _, repo := range repos {
			if visible != nil && !visible(repo) {
				continue
			}
			if len(out) == want {
				return out, true, nil
			}
			out = append(out, repo)
		}
		if len(repos) < q.Limit {
			return out, false, nil
		}
		q.After = repos[len(repos)-1]
	}
}

// Referrers returns a page of the manifests whose subject is d, filtered
// by artifactType when it is not empty, and whether more follow.
func (r *Registry) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string, p storage.Page) ([]storage.Referrer, bool, error) {
	p.After = cursor(p.After, maxDigestLength)
	q := clampPage(p)
	var out []storage.Referrer
	for {
		refs, err := r.meta.ListReferrers(ctx, repo, d, q)
		if err != nil {
			return nil, false, fmt.Errorf("list referrers of %s in %s: %w", d, repo, err)
		}
		for _, ref := range refs {
			if artifactType == "" || ref.ArtifactType == artifactType {
				out = append(out, ref)
			}
			if len(out) == q.Limit {
				return out[:q.Limit-1], true, nil
			}
		}
		if len(refs) < q.Limit {
			return out, false, nil
		}
		q.After = string(refs[len(refs)-1].Digest)
	}
}
