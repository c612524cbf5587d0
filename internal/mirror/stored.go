package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// A stored rule is named like a repository prefix (lower-case components,
// with - . _ and / between), so that it is a key of the policy store; its
// secret like a Secrets Manager name or ARN.
var secretName = regexp.MustCompile(`^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}$`)

// SecretsPrefix is where a stored rule's credentials live in Secrets
// Manager: the sync function may read the secrets under it alone.
const SecretsPrefix = deploy.MirrorSecretsPrefix

// Validate checks a stored rule and returns it in canonical form (the
// policy store's Rule).
func (r Rule) Validate() (Rule, error) {
	name, err := oci.NormalizePrefix(r.Name)
	if err != nil || name == "" {
		// The name's own check says what is wrong, in a repository's terms.
		why := "it is empty"
		var oe *oci.Error
		if err := oci.ValidateRepository(strings.TrimSuffix(r.Name, "/")); errors.As(err, &oe) {
			why = oe.Message
		}
		return r, fmt.Errorf("rule name %q: want a name like a repository's (lower-case letters, digits, - . _ /): %s", r.Name, strings.Replace(why, "repository name", "name", 1))
	}
	r.Name = name
	r.Source, r.Target, r.Tags = strings.TrimSpace(r.Source), strings.TrimSpace(r.Target), strings.TrimSpace(r.Tags)
	if r.Credentials != "" && !secretName.MatchString(r.Credentials) {
		return r, fmt.Errorf("credentials %q: want the name or ARN of a Secrets Manager secret", r.Credentials)
	}
	if first, _, _ := strings.Cut(r.Target, "/"); strings.ContainsAny(first, ".:") || first == "localhost" {
		return r, fmt.Errorf("rule %s: target %q: a stored rule's target is a repository of this registry, without a host (such as mirror/alpine)", name, r.Target)
	}
	repo, _, _ := strings.Cut(r.Target, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	if err := oci.ValidateRepository(repo); err != nil {
		return r, fmt.Errorf("rule %s: target %q: %w", name, r.Target, err)
	}
	if r.Credentials != "" && !strings.HasPrefix(r.Credentials, SecretsPrefix) && !strings.Contains(r.Credentials, ":secret:"+SecretsPrefix) {
		return r, fmt.Errorf("rule %s: credentials %q: the sync reads the secrets named under %s alone", name, r.Credentials, SecretsPrefix)
	}
	if err := r.Check(); err != nil {
		return r, fmt.Errorf("rule %s: %w", name, err)
	}
	return r, nil
}

// Store is the stored rules: under mirror/ in the settings store, each
// change audited (internal/policy's store, keyed by name).
type Store = policy.StoreOf[Rule]

// NewStore returns the stored rules over settings.
func NewStore(settings storage.Settings) *Store { return policy.NewStoreOf[Rule]("mirror", settings) }

// RulePrefix is the rule's name, its key in the store.
func (r Rule) RulePrefix() string { return r.Name }

// WithPrefix returns r named name.
func (r Rule) WithPrefix(name string) Rule {
	r.Name = name
	return r
}

// Run is what the last sync of a rule did.
type Run struct {
	Rule     string    `json:"rule"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// The counts, as skiff copy's summary has them.
	Images           int      `json:"images"`
	ManifestsCopied  int64    `json:"manifestsCopied"`
	ManifestsSkipped int64    `json:"manifestsSkipped"`
	BlobsCopied      int64    `json:"blobsCopied"`
	BlobsSkipped     int64    `json:"blobsSkipped"`
	Bytes            int64    `json:"bytes"`
	Errors           []string `json:"errors,omitempty"`
}

// runKey is where a rule's last run is kept in the settings store.
const runKey = "mirror-run/"

// SaveRun records the last run of its rule (unconditionally: one writer,
// the scheduled sync).
func SaveRun(ctx context.Context, settings storage.Settings, run Run) error {
	b, err := json.Marshal(run)
	if err != nil {
		return err
	}
	key := runKey + run.Rule
	cur, err := settings.GetSetting(ctx, key)
	var prev int64
	switch {
	case err == nil:
		prev = cur.Version
	case !isNotFound(err):
		return fmt.Errorf("read the last run of %s: %w", run.Rule, err)
	}
	if err := settings.PutSetting(ctx, storage.Setting{Key: key, Value: b}, prev); err != nil {
		return fmt.Errorf("record the run of %s: %w", run.Rule, err)
	}
	return nil
}

// Runs returns the last run of every rule that ran, by rule name.
func Runs(ctx context.Context, settings storage.Settings) (map[string]Run, error) {
	out := map[string]Run{}
	err := storage.EachSetting(ctx, settings, runKey, func(s storage.Setting) error {
		var r Run
		if err := json.Unmarshal(s.Value, &r); err != nil {
			return fmt.Errorf("run record %s: %w", s.Key, err)
		}
		out[r.Rule] = r
		return nil
	})
	return out, err
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
