// Package origin checks that a request came through the registry's front
// door: CloudFront adds a shared secret header (deploy.OriginSecretHeader)
// to every request it sends an origin, and the functions and the ingest
// service refuse one without it, since their URLs are reachable by other
// means (public Function URLs; a load balancer inside the VPC).
package origin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/skiff-registry/skiff/internal/awsconf"
	"github.com/skiff-registry/skiff/internal/config"
)

// How a warm function follows a rotated origin secret (infra/README.md,
// Rotating the origin secret): CloudFront switches to the new value at a
// deploy, while functions keep running.
const (
	// originRefresh is how often the secret is read again, so a value
	// rotated out twice stops being accepted.
	originRefresh = 5 * time.Minute
	// originRetry is how soon a value that matches nothing known makes the
	// function read the secret again (it may be the new one). It also
	// bounds the Secrets Manager calls wrong values can cause.
	originRetry = 30 * time.Second
)

// secretGetter is the one Secrets Manager call the origin check makes.
type secretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Secret checks the X-Skiff-Origin-Secret header, in constant time,
// against the accepted values: a fixed one, or the AWSCURRENT and
// AWSPREVIOUS versions of a Secrets Manager secret (both, so a rotation
// never refuses CloudFront's requests), read at cold start and again every
// originRefresh. A function serves one request at a time, so re-reading on
// the request path costs one request a few tens of milliseconds.
type Secret struct {
	mu      sync.Mutex
	sums    [][sha256.Size]byte
	fetched time.Time
	fetch   func(context.Context) ([]string, error) // nil: fixed values
	now     func() time.Time
}

// Fixed accepts exactly secret.
func Fixed(secret string) *Secret {
	return &Secret{sums: [][sha256.Size]byte{sha256.Sum256([]byte(secret))}, now: time.Now}
}

// FromConfig returns the origin check cfg configures:
// cfg.OriginSecret as a fixed value, or the secret cfg.OriginSecretARN
// names (read now: an error fails the cold start). nil means no check.
func FromConfig(ctx context.Context, cfg config.Config) (*Secret, error) {
	if cfg.OriginSecretARN == "" {
		return originFrom(ctx, cfg, nil)
	}
	awsCfg, err := awsconf.Load(ctx)
	if err != nil {
		return nil, err
	}
	return originFrom(ctx, cfg, secretsmanager.NewFromConfig(awsCfg))
}

func originFrom(ctx context.Context, cfg config.Config, sm secretGetter) (*Secret, error) {
	switch {
	case cfg.OriginSecret != "" && cfg.OriginSecretARN != "":
		return nil, errors.New("set the origin secret (SKIFF_ORIGIN_SECRET) or its secret's ARN (SKIFF_ORIGIN_SECRET_ARN), not both")
	case cfg.OriginSecretARN == "" && cfg.OriginSecret == "":
		return nil, nil
	case cfg.OriginSecretARN == "":
		return Fixed(cfg.OriginSecret), nil
	}
	o := &Secret{fetch: func(ctx context.Context) ([]string, error) { return readVersions(ctx, sm, cfg.OriginSecretARN) }, now: time.Now}
	if err := o.refresh(ctx); err != nil {
		return nil, err
	}
	return o, nil
}

// readVersions reads the current and, when there is one, the previous
// value of the secret arn.
func readVersions(ctx context.Context, sm secretGetter, arn string) ([]string, error) {
	var values []string
	for _, stage := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn, VersionStage: &stage})
		var notFound *smtypes.ResourceNotFoundException
		if stage == "AWSPREVIOUS" && errors.As(err, &notFound) {
			break // never rotated
		}
		if err != nil {
			return nil, fmt.Errorf("read the origin secret %s (%s): %w", arn, stage, err)
		}
		if out.SecretString == nil || strings.TrimSpace(*out.SecretString) == "" {
			if stage == "AWSCURRENT" {
				return nil, fmt.Errorf("the origin secret %s holds no string", arn)
			}
			continue
		}
		// CloudFront sends the value as a header value, which has no
		// surrounding white space.
		values = append(values, strings.TrimSpace(*out.SecretString))
	}
	return values, nil
}

// refresh reads the accepted values again; on failure the known ones stay.
func (o *Secret) refresh(ctx context.Context) error {
	o.fetched = o.now()
	values, err := o.fetch(ctx)
	if err != nil {
		return err
	}
	sums := make([][sha256.Size]byte, len(values))
	for i, v := range values {
		sums[i] = sha256.Sum256([]byte(v))
	}
	o.sums = sums
	return nil
}

// Allows reports whether got is an accepted origin secret. refreshErr is a
// failed re-read, for the log: the decision then used the known values.
func (o *Secret) Allows(ctx context.Context, got string) (ok bool, refreshErr error) {
	sum := sha256.Sum256([]byte(got))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fetch != nil && o.now().Sub(o.fetched) >= originRefresh {
		refreshErr = o.refresh(ctx)
	}
	if got != "" && o.match(sum) {
		return true, refreshErr
	}
	if got != "" && o.fetch != nil && o.now().Sub(o.fetched) >= originRetry {
		refreshErr = o.refresh(ctx)
		return o.match(sum), refreshErr
	}
	return false, refreshErr
}

// match compares sum with every accepted value, in constant time (hashes:
// equal lengths, and the secret's length does not leak either).
func (o *Secret) match(sum [sha256.Size]byte) bool {
	found := 0
	for _, s := range o.sums {
		found |= subtle.ConstantTimeCompare(sum[:], s[:])
	}
	return found == 1
}
