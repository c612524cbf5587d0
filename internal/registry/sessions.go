package registry

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// Upload sessions are lazy: POST stores nothing. The session id carries
// its repository and start time under an HMAC, so any function instance
// can tell an id it issued from a forged or expired one without a read.
// The session item is written only when a request first writes bytes (a
// conditional create, so one of several concurrent writers wins) or when
// the session ends (a tombstone). A blob pushed whole with POST then PUT
// costs one session write, the tombstone, made with a conditional create
// in place of a read: it both finds the session fresh and spends it.
//
// Id format: <32 hex random>.<unix seconds>.<32 hex HMAC-SHA256 prefix>.

// uploadKeySetting is where the shared signing key lives in the metadata
// store, so every instance (and every restart) accepts the same ids.
const uploadKeySetting = "secret/upload-session-key"

// LoadUploadKey returns the upload-session signing key kept in settings,
// creating it on first use. Concurrent first starts agree: the create is
// conditional and the loser reads the winner's key.
func LoadUploadKey(ctx context.Context, settings storage.Settings) ([]byte, error) {
	for range 2 {
		s, err := settings.GetSetting(ctx, uploadKeySetting)
		if err == nil {
			key, err := hex.DecodeString(string(s.Value))
			if err != nil || len(key) < 32 {
				return nil, fmt.Errorf("setting %s is not a 32-byte hex key", uploadKeySetting)
			}
			return key, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("load upload key: %w", err)
		}
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		err = settings.PutSetting(ctx, storage.Setting{Key: uploadKeySetting, Value: []byte(hex.EncodeToString(key))}, 0)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return nil, fmt.Errorf("store upload key: %w", err)
		}
	}
	return nil, errors.New("load upload key: lost the race twice")
}

func (r *Registry) signSession(repo, nonce string, started int64, alg digest.Algorithm) string {
	m := hmac.New(sha256.New, r.uploadKey)
	fmt.Fprintf(m, "%s\n%s\n%d", repo, nonce, started)
	if alg != "" {
		// The algorithm the client named is signed into the id, so the
		// session needs no write to remember it.
		fmt.Fprintf(m, "\n%s", alg)
	}
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// newSession returns a fresh lazy session of repo, for a client that
// named alg (empty: none).
func (r *Registry) newSession(repo string, alg digest.Algorithm) storage.Upload {
	now := r.opts.now().UTC().Truncate(time.Second)
	nonce := newID()
	id := fmt.Sprintf("%s.%d.%s", nonce, now.Unix(), r.signSession(repo, nonce, now.Unix(), alg))
	return storage.Upload{ID: id, Repo: repo, Key: uploadedKey(id), Started: now, Expires: now.Add(r.opts.uploadTTL), DigestAlgorithm: alg}
}

// parseSession checks that id was issued by this registry for repo and
// returns the session it stands for before any write.
func (r *Registry) parseSession(repo, id string) (storage.Upload, bool) {
	parts := strings.Split(id, ".")
	if len(parts) != 3 || len(parts[0]) != 32 {
		return storage.Upload{}, false
	}
	started, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return storage.Upload{}, false
	}
	for _, alg := range []digest.Algorithm{"", digest.SHA256, digest.SHA512} {
		want := r.signSession(repo, parts[0], started, alg)
		if hmac.Equal([]byte(want), []byte(parts[2])) {
			t := time.Unix(started, 0).UTC()
			return storage.Upload{ID: id, Repo: repo, Key: uploadedKey(id), Started: t, Expires: t.Add(r.opts.uploadTTL), DigestAlgorithm: alg}, true
		}
	}
	return storage.Upload{}, false
}
