package registry

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"fmt"
	"hash"
	"sync"

	"github.com/opencontainers/go-digest"
)

// uploadAlgorithms are hashed on every upload session: the client names the
// digest only at the end, and the conformance suite (like real clients)
// may use either.
var uploadAlgorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// hashers is the running hash of an upload by algorithm.
type hashers map[digest.Algorithm]hash.Hash

func newHash(alg digest.Algorithm) hash.Hash {
	if alg == digest.SHA512 {
		return sha512.New()
	}
	return sha256.New()
}

// restoreHashers rebuilds the running hashes from their saved states (Go's
// sha256/sha512 implement encoding.BinaryUnmarshaler); a nil state starts
// a fresh hash.
func restoreHashers(states map[string][]byte) (hashers, error) {
	hs := hashers{}
	for _, alg := range uploadAlgorithms {
		h := newHash(alg)
		if st, ok := states[string(alg)]; ok {
			if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
				return nil, fmt.Errorf("restore %s hash state: %w", alg, err)
			}
		}
		hs[alg] = h
	}
	return hs, nil
}

func (hs hashers) Write(p []byte) (int, error) {
	for _, h := range hs {
		h.Write(p) // hash.Hash.Write never fails
	}
	return len(p), nil
}

// asyncMin is the smallest write hashed beside the caller: below it a
// goroutine costs more than it saves.
const asyncMin = 256 << 10

// writeAsync hashes p with every algorithm, each in a goroutine of its
// own, and returns a function that waits until they are done (it may be
// called more than once). p must not change until then.
func (hs hashers) writeAsync(p []byte) (wait func()) {
	if len(p) < asyncMin {
		hs.Write(p)
		return func() {}
	}
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Go(func() { h.Write(p) })
	}
	return wg.Wait
}

func (hs hashers) save() (map[string][]byte, error) {
	out := make(map[string][]byte, len(hs))
	for alg, h := range hs {
		st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("save %s hash state: %w", alg, err)
		}
		out[string(alg)] = st
	}
	return out, nil
}

// digest returns the running digest for alg, false when alg is not hashed.
func (hs hashers) digest(alg digest.Algorithm) (digest.Digest, bool) {
	h, ok := hs[alg]
	if !ok {
		return "", false
	}
	return digest.NewDigest(alg, h), true
}
