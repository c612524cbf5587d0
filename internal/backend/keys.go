package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/skiff-registry/skiff/internal/awsconf"
	"github.com/skiff-registry/skiff/internal/config"
)

// LoadTokenKey returns the token signing key cfg names: a Secrets Manager
// secret (AWS mode), or a local key file, created with a random key on
// first use (mode 0600).
func LoadTokenKey(ctx context.Context, cfg config.Config) ([]byte, error) {
	if cfg.TokenKeySecret != "" {
		awsCfg, err := awsconf.Load(ctx)
		if err != nil {
			return nil, err
		}
		out, err := secretsmanager.NewFromConfig(awsCfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &cfg.TokenKeySecret})
		if err != nil {
			return nil, fmt.Errorf("read token signing key from secret %s: %w", cfg.TokenKeySecret, err)
		}
		if out.SecretString == nil || len(*out.SecretString) < 32 {
			return nil, fmt.Errorf("secret %s must hold a string of at least 32 characters", cfg.TokenKeySecret)
		}
		return []byte(*out.SecretString), nil
	}
	path := cfg.TokenKeyFile
	if path == "" {
		if cfg.Backend != config.BackendLocal {
			return nil, errors.New("authentication needs a token signing key: --token-key-secret (Secrets Manager) or --token-key-file")
		}
		path = filepath.Join(cfg.DataDir, "token.key")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, cerr := createKeyFile(path)
		if !errors.Is(cerr, fs.ErrExist) {
			return key, cerr
		}
		// Another process created it first: use theirs.
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read token signing key %s: %w", path, err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < 32 {
		return nil, fmt.Errorf("token signing key %s must hold at least 32 characters", path)
	}
	return []byte(key), nil
}

// createKeyFile writes a new random key to path, failing with fs.ErrExist
// if the file exists. The key is written to a temporary file first and
// linked into place, so no reader ever sees a partial key.
func createKeyFile(path string) ([]byte, error) {
	var k [32]byte
	_, _ = rand.Read(k[:])
	key := hex.EncodeToString(k[:])
	tmp, err := os.CreateTemp(filepath.Dir(path), ".token-key-*")
	if err != nil {
		return nil, fmt.Errorf("create token signing key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(key + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("create token signing key %s: %w", path, err)
	}
	return []byte(key), nil
}
