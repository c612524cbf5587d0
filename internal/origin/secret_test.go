package origin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/skiff-registry/skiff/internal/config"
)

const testARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:origin-AbCdEf"

// fakeSecrets serves the stages of one secret; a missing stage is
// ResourceNotFoundException, as Secrets Manager answers.
type fakeSecrets struct {
	stages map[string]*string
	err    error
	calls  int
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if *in.SecretId != testARN {
		return nil, errors.New("wrong secret id " + *in.SecretId)
	}
	v, ok := f.stages[*in.VersionStage]
	if !ok {
		return nil, &smtypes.ResourceNotFoundException{Message: new(string)}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: v}, nil
}

func str(s string) *string { return &s }

func TestOriginFromConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     config.Config
		sm      *fakeSecrets
		accept  []string
		refuse  []string
		wantNil bool
		wantErr string
	}{
		{name: "none", cfg: config.Config{}, wantNil: true},
		{name: "fixed", cfg: config.Config{OriginSecret: "abc"}, accept: []string{"abc"}, refuse: []string{"", "ab", "abcd"}},
		{name: "current only", cfg: config.Config{OriginSecretARN: testARN},
			sm:     &fakeSecrets{stages: map[string]*string{"AWSCURRENT": str("  xyz\n")}},
			accept: []string{"xyz"}, refuse: []string{"", "  xyz\n"}},
		{name: "current and previous", cfg: config.Config{OriginSecretARN: testARN},
			sm:     &fakeSecrets{stages: map[string]*string{"AWSCURRENT": str("new"), "AWSPREVIOUS": str("old")}},
			accept: []string{"new", "old"}, refuse: []string{"older"}},
		{name: "both set", cfg: config.Config{OriginSecret: "abc", OriginSecretARN: testARN}, wantErr: "not both"},
		{name: "read fails", cfg: config.Config{OriginSecretARN: testARN}, sm: &fakeSecrets{err: errors.New("AccessDenied")}, wantErr: "AccessDenied"},
		{name: "binary secret", cfg: config.Config{OriginSecretARN: testARN}, sm: &fakeSecrets{stages: map[string]*string{"AWSCURRENT": nil}}, wantErr: "holds no string"},
		{name: "blank secret", cfg: config.Config{OriginSecretARN: testARN}, sm: &fakeSecrets{stages: map[string]*string{"AWSCURRENT": str(" ")}}, wantErr: "holds no string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sm secretGetter
			if tc.sm != nil {
				sm = tc.sm
			}
			o, err := originFrom(context.Background(), tc.cfg, sm)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (o == nil) != tc.wantNil {
				t.Fatalf("origin %v, want nil: %v", o, tc.wantNil)
			}
			for _, v := range tc.accept {
				if ok, err := o.Allows(context.Background(), v); !ok || err != nil {
					t.Errorf("%q refused (%v)", v, err)
				}
			}
			for _, v := range tc.refuse {
				if ok, _ := o.Allows(context.Background(), v); ok {
					t.Errorf("%q accepted", v)
				}
			}
		})
	}
}

// TestOriginRotation follows the procedure of infra/README.md: a new value
// becomes AWSCURRENT, CloudFront starts sending it, the oldest stops being
// accepted at the next rotation; Secrets Manager is not called on every
// request, nor more than every originRetry for unknown values.
func TestOriginRotation(t *testing.T) {
	t.Parallel()
	sm := &fakeSecrets{stages: map[string]*string{"AWSCURRENT": str("v1")}}
	now := time.Unix(0, 0)
	o, err := originFrom(context.Background(), config.Config{OriginSecretARN: testARN}, sm)
	if err != nil {
		t.Fatal(err)
	}
	o.now = func() time.Time { return now }
	o.fetched = now
	allows := func(v string) bool {
		t.Helper()
		ok, err := o.Allows(context.Background(), v)
		if err != nil {
			t.Fatalf("allows(%q): %v", v, err)
		}
		return ok
	}
	calls := func() int { n := sm.calls; sm.calls = 0; return n }
	calls()

	if !allows("v1") || !allows("v1") || calls() != 0 {
		t.Fatal("v1 refused, or the secret was read again for a known value")
	}
	// Rotation: v2 current, v1 previous. A warm function learns v2 the
	// first time it sees it (after originRetry).
	sm.stages = map[string]*string{"AWSCURRENT": str("v2"), "AWSPREVIOUS": str("v1")}
	now = now.Add(originRetry)
	if !allows("v2") || calls() != 2 {
		t.Fatal("v2 refused after rotation, or not read once (two stages)")
	}
	if !allows("v1") {
		t.Fatal("v1 (previous) refused during the rotation")
	}
	// Wrong values: at most one re-read per originRetry.
	now = now.Add(originRetry)
	for range 5 {
		if allows("guess") {
			t.Fatal("a guess was accepted")
		}
	}
	if n := calls(); n != 2 {
		t.Errorf("%d Secrets Manager calls for 5 wrong values, want 2 (one re-read)", n)
	}
	// Next rotation: v1 is gone within originRefresh.
	sm.stages = map[string]*string{"AWSCURRENT": str("v3"), "AWSPREVIOUS": str("v2")}
	now = now.Add(originRefresh)
	if allows("v1") {
		t.Error("v1 accepted after it was rotated out twice")
	}
	if !allows("v3") || !allows("v2") {
		t.Error("v3 or v2 refused")
	}
	// A failed re-read keeps the known values and is reported.
	sm.err = errors.New("throttled")
	now = now.Add(originRefresh)
	if ok, err := o.Allows(context.Background(), "v3"); !ok || err == nil {
		t.Errorf("after a failed re-read: allowed %v, error %v; want true and the error", ok, err)
	}
}
