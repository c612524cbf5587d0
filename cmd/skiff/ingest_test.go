package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// TestServeIngestConfig: --ingest takes its configuration from the
// environment and refuses flags that would not apply, and a missing
// origin secret, before it opens anything.
func TestServeIngestConfig(t *testing.T) {
	t.Parallel()
	base := []string{deploy.EnvBucket, "b", deploy.EnvTable, "t", deploy.EnvOriginSecret, "s"}
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"flag that does not apply", []string{"--data=/x", "--auth"}, base, "--auth, --data do not apply"},
		{"no origin secret", nil, []string{deploy.EnvBucket, "b", deploy.EnvTable, "t"}, "needs the front door's origin secret"},
		{"no bucket", nil, []string{deploy.EnvTable, "t", deploy.EnvOriginSecret, "s"}, "needs a bucket"},
		{"bad variable", nil, append([]string{deploy.EnvAuth, "maybe"}, base...), deploy.EnvAuth + `="maybe"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--ingest", "--addr=127.0.0.1:0"}, tc.args...)
			err := run(context.Background(), args, env(tc.env...), strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q in it", err, tc.want)
			}
		})
	}
}

// TestServeIngest runs `skiff serve --ingest` on the AWS stand-ins: it
// answers only with the origin secret, serves the blob routes and no
// others, takes a body over the functions' cap in one request, and
// answers the load balancer's health check without the secret.
func TestServeIngest(t *testing.T) {
	t.Parallel()
	testenv.DynamoDB(t)
	testenv.S3(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "skiff-ingest-" + hex.EncodeToString(b)
	stores, err := backend.Open(t.Context(), config.Config{Backend: config.BackendAWS, Bucket: name, Table: name, CreateResources: true})
	if err != nil {
		t.Fatal(err)
	}
	stores.Close()

	const secret = "front-door-secret"
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	vars := env(deploy.EnvBucket, name, deploy.EnvTable, name, deploy.EnvOriginSecret, secret, deploy.EnvAuth, "false",
		deploy.EnvTokenKeyFile, filepath.Join(t.TempDir(), "key"))
	go func() {
		done <- run(ctx, []string{"serve", "--ingest", "--addr=127.0.0.1:0"}, vars, strings.NewReader(""), io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := ""
	for deadline := time.Now().Add(20 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct {
				Msg, Addr string
				Ingest    bool
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" && line.Ingest {
				base = "http://" + line.Addr
			}
		}
	}
	if base == "" {
		t.Fatalf("serve --ingest did not start:\n%s", logs)
	}

	do := func(method, path string, body []byte, withSecret bool) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		if withSecret {
			req.Header.Set(deploy.OriginSecretHeader, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, string(out)
	}
	if resp, body := do(http.MethodGet, deploy.HealthPath, nil, false); resp.StatusCode != http.StatusOK {
		t.Errorf("health check: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(http.MethodPost, "/v2/a/blobs/uploads/", nil, false); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "DENIED") {
		t.Errorf("without the origin secret: %d %s, want 403 DENIED", resp.StatusCode, body)
	}
	if resp, body := do(http.MethodGet, "/v2/a/manifests/v1", nil, true); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a manifest route on the ingest service: %d %s, want 404 (not its route group)", resp.StatusCode, body)
	}
	// 9 MiB in one monolithic POST: over the functions' 4 MiB cap.
	blob := make([]byte, 9<<20)
	_, _ = rand.Read(blob)
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	resp, body := do(http.MethodPost, "/v2/a/blobs/uploads/?digest="+digest, blob, true)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != digest {
		t.Fatalf("monolithic 9 MiB POST: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(http.MethodHead, "/v2/a/blobs/"+digest, nil, true); resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(blob)) {
		t.Errorf("HEAD of the pushed blob: %d %s (length %d)", resp.StatusCode, body, resp.ContentLength)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the origin secret is in the log")
	}
}
