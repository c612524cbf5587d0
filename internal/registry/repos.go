package registry

import (
	"context"
	"fmt"
	"sync"
)

// maxKnownRepos bounds the repositories a process remembers having
// recorded: names are at most 255 bytes, so about 2.5 MB at the most.
const maxKnownRepos = 10_000

// knownRepos are the repositories this process has recorded in the
// catalog. A manifest PUT records its repository the first time a process
// sees it, not on every push: the catalog items share one DynamoDB
// partition (REPOS), which takes about 1,000 writes a second, and a mirror
// sync pushes bursts of manifests into the same repositories. Nothing
// removes a repository from the catalog, so what is remembered stays true.
type knownRepos struct {
	mu    sync.Mutex
	names map[string]struct{}
}

// recordRepository writes repo to the catalog unless this process already has.
func (r *Registry) recordRepository(ctx context.Context, repo string) error {
	return r.repos.record(ctx, repo, r.meta.PutRepository)
}

// recordLinked records that repo has blob links unless this process
// already has (the collector visits those repositories too).
func (r *Registry) recordLinked(ctx context.Context, repo string) error {
	return r.linked.record(ctx, repo, r.meta.PutLinkedRepository)
}

func (k *knownRepos) record(ctx context.Context, repo string, put func(context.Context, string) error) error {
	k.mu.Lock()
	_, known := k.names[repo]
	k.mu.Unlock()
	if known {
		return nil
	}
	if err := put(ctx, repo); err != nil {
		return fmt.Errorf("record repository %s: %w", repo, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.names == nil || len(k.names) >= maxKnownRepos {
		k.names = make(map[string]struct{}) // start over: at worst one more write per repository
	}
	k.names[repo] = struct{}{}
	return nil
}
