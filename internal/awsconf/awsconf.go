// Package awsconf loads the AWS SDK's default configuration once per
// process: a function's cold start opens the stores, reads the token key
// and the origin secret, and each used to load (and resolve credentials
// for) a configuration of its own.
package awsconf

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

var (
	mu     sync.Mutex
	loaded *aws.Config
)

// Load returns the default configuration (region, credentials and
// endpoints from the environment, as the SDK reads them), loading it on
// the first call; a failed load is tried again on the next call. Each
// caller gets a copy of its own (APIOptions cloned, so appending to it
// affects no other).
func Load(ctx context.Context) (aws.Config, error) {
	mu.Lock()
	defer mu.Unlock()
	if loaded == nil {
		c, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
		}
		loaded = &c
	}
	c := loaded.Copy()
	c.APIOptions = slices.Clone(loaded.APIOptions)
	return c, nil
}
