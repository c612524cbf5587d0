package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// syncBuffer is safe for the server goroutine to write while the test reads.
type syncBuffer = testenv.Buffer

// startServe runs `skiff serve` on a free port until t ends and returns
// its URL and its log.
func startServe(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	args = append([]string{"serve", "--addr=127.0.0.1:0", "--data=" + t.TempDir()}, args...)
	go func() { done <- run(ctx, args, env(), strings.NewReader(""), &bytes.Buffer{}, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				return "http://" + line.Addr, logs
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start:\n%s", logs)
	return "", nil
}

// TestServeOperatorAPI: `skiff serve --operator-api` serves the API the
// CLI talks to and logs the policy cache bound; without the flag the API
// is off.
func TestServeOperatorAPI(t *testing.T) {
	t.Parallel()
	url, logs := startServe(t, "--operator-api")
	if !strings.Contains(logs.String(), `"policy_cache_ttl":"`+policy.DefaultTTL.String()+`"`) || !strings.Contains(logs.String(), "without --auth") {
		t.Errorf("start-up log lacks the cache TTL or the authentication warning:\n%s", logs)
	}
	if _, _, err := cli(t, env(), "policy", "set", "mirror/", "--index-children=none", "--registry="+url); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, env(), "policy", "list", "--registry="+url)
	if err != nil || !strings.Contains(out, "mirror ") {
		t.Errorf("list: %q %v", out, err)
	}

	off, _ := startServe(t)
	_, _, err = cli(t, env(), "policy", "list", "--registry="+off)
	if err == nil || !strings.Contains(err.Error(), "--operator-api") {
		t.Errorf("without --operator-api: %v", err)
	}
}

// TestServeRefusesOpenAddressWithoutAuth: without authentication, skiff
// serve listens on loopback only unless told --insecure-no-auth.
func TestServeRefusesOpenAddressWithoutAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"all interfaces", []string{"--addr", "0.0.0.0:0"}},
		{"a LAN-style name", []string{"--addr", "registry.internal:0"}},
		{"anonymous pull needs auth", []string{"--addr", "127.0.0.1:0", "--anonymous-pull", "public"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			args := append([]string{"serve", "--data", t.TempDir()}, tc.args...)
			err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}, &stderr)
			if err == nil || !strings.Contains(err.Error(), "invalid configuration") {
				t.Fatalf("got %v, want a refused configuration", err)
			}
		})
	}
	// With --insecure-no-auth the same address is accepted: the server
	// starts, and stops when its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", t.TempDir(), "--addr", "0.0.0.0:0", "--insecure-no-auth"}, func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("--insecure-no-auth: %v", err)
	}
}
