package awsstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// skAbsent + child digest + "#" + index digest: the children a sparse
// index names that its repository does not hold.
const skAbsent = "A#"

type absentItem struct {
	PK       string `dynamodbav:"PK"`
	SK       string `dynamodbav:"SK"`
	Platform string `dynamodbav:"platform,omitempty"`
}

func absentPrefix(child digest.Digest) (string, error) {
	if child == "" || strings.ContainsRune(string(child), '#') {
		return "", fmt.Errorf("invalid child digest %q", child)
	}
	return skAbsent + string(child) + "#", nil
}

// PutAbsent records that a.Index names child: one unconditional PutItem.
func (s *MetaStore) PutAbsent(ctx context.Context, repo string, child digest.Digest, a storage.Absent) error {
	prefix, err := absentPrefix(child)
	if err != nil {
		return fmt.Errorf("put absent %s@%s: %w", repo, child, err)
	}
	it := absentItem{PK: repoPK(repo), SK: prefix + string(a.Index), Platform: a.Platform}
	if err := s.putItem(ctx, it, writeCond{}); err != nil {
		return fmt.Errorf("put absent %s@%s of %s: %w", repo, child, a.Index, err)
	}
	return nil
}

// ListAbsent lists the records of child: one Query with
// begins_with(SK, "A#<child>#") per page.
func (s *MetaStore) ListAbsent(ctx context.Context, repo string, child digest.Digest, p storage.Page) ([]storage.Absent, error) {
	prefix, err := absentPrefix(child)
	if err != nil {
		return nil, fmt.Errorf("list absent %s@%s: %w", repo, child, err)
	}
	var out []storage.Absent
	err = s.query(ctx, repoPK(repo), prefix, p.After, p.Limit, func(av map[string]types.AttributeValue) error {
		var it absentItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return err
		}
		out = append(out, storage.Absent{Index: digest.Digest(strings.TrimPrefix(it.SK, prefix)), Platform: it.Platform})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list absent %s@%s: %w", repo, child, err)
	}
	return out, nil
}
