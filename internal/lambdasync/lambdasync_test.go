package lambdasync_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/skiff-registry/skiff/internal/lambdasync"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/syncer"
	"github.com/skiff-registry/skiff/internal/teststores"
)

type secrets map[string]*string

func (s secrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, ok := s[*in.SecretId]
	if !ok {
		return nil, errors.New("ResourceNotFoundException: no such secret")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: v}, nil
}

func str(s string) *string { return &s }

// TestSecretReader: a rule's secret is {"username","password"}; anything
// else says what it should be.
func TestSecretReader(t *testing.T) {
	t.Parallel()
	read := lambdasync.SecretReader(secrets{
		"good": str(`{"username":"u","password":"p"}`), "nopass": str(`{"username":"u"}`),
		"text": str(`hunter2`), "binary": nil,
	})
	if u, p, err := read(context.Background(), "good"); err != nil || u != "u" || p != "p" {
		t.Errorf("good: %q %q %v", u, p, err)
	}
	for id, want := range map[string]string{"nopass": "is not {", "text": "is not {", "binary": "no string value", "missing": "no such secret"} {
		if _, _, err := read(context.Background(), id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", id, err, want)
		}
	}
}

// TestHandler: the handler needs the invocation's deadline, and runs the
// stored rules under it, holding the run as its request id.
func TestHandler(t *testing.T) {
	t.Parallel()
	s := teststores.Local(t, 5<<20)
	sy := &syncer.Syncer{Rules: mirror.NewStore(s.Meta), Settings: s.Meta, Interval: time.Hour, Log: slog.New(slog.DiscardHandler)}
	h := lambdasync.Handler(sy, slog.New(slog.DiscardHandler))
	if _, err := h(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "no deadline") {
		t.Errorf("without a deadline: %v", err)
	}
	ctx, cancel := context.WithTimeout(lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"}), time.Minute)
	defer cancel()
	inv, err := h(ctx, nil)
	if err != nil || inv.Outcome != "finished" || inv.Left != 0 {
		t.Errorf("no rules: %+v %v, want a finished run", inv, err)
	}
	if inv, err := h(ctx, nil); err != nil || inv.Outcome != "idle" {
		t.Errorf("again within the interval: %+v %v", inv, err)
	}
}
