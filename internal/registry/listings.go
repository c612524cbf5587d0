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

// ListTags returns a page of repo's tag names and whether more follow.
// A repository no manifest was ever pushed to is NAME_UNKNOWN, as in
// distribution and the spec's error table; one whose tags were all
// deleted lists none. Only an empty first page pays the existence check.
func (r *Registry) ListTags(ctx context.Context, repo string, p storage.Page) ([]string, bool, error) {
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

// Catalog returns a page of repository names and whether more follow.
func (r *Registry) Catalog(ctx context.Context, p storage.Page) ([]string, bool, error) {
	q := clampPage(p)
	repos, err := r.meta.ListRepositories(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("list repositories: %w", err)
	}
	more := len(repos) == q.Limit
	if more {
		repos = repos[:q.Limit-1]
	}
	return repos, more, nil
}

// Referrers returns a page of the manifests whose subject is d, filtered
// by artifactType when it is not empty, and whether more follow.
func (r *Registry) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string, p storage.Page) ([]storage.Referrer, bool, error) {
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
