// Package standin starts the local stand-ins for the AWS services Skiff
// uses, for its tests and its local harness: an in-memory S3 (gofakes3)
// served from this process, and dynalite (DynamoDB on Node.js) as a child
// process, installed from scripts/standins on first use.
//
// The test helpers (internal/testenv) start them when a test needs one and
// the environment names none; tools/standins runs a command with both up
// (what `make test` does around the suite).
package standin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Credentials and region the SDK needs to sign requests; neither stand-in
// checks them.
const (
	AccessKey = "skiff-dummy"
	SecretKey = "skiff-dummy"
	Region    = "us-east-1"
)

// Env is the environment that points the AWS SDK at the stand-ins, as
// KEY=VALUE pairs; an empty URL leaves its endpoint out.
func Env(s3URL, dynamoURL string) []string {
	env := []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=" + Region,
	}
	if s3URL != "" {
		env = append(env, "AWS_ENDPOINT_URL_S3="+s3URL)
	}
	if dynamoURL != "" {
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+dynamoURL)
	}
	return env
}

// RepoRoot finds the module root (the directory holding go.mod with
// Skiff's module line) from the working directory up: tests run in their
// package's directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/skiff-registry/skiff\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of github.com/skiff-registry/skiff above the working directory")
		}
		dir = parent
	}
}
