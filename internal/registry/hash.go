package registry

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	"github.com/opencontainers/go-digest"
)

// uploadAlgorithms are the algorithms an upload may be committed with.
// A session hashes sha256 always (the canonical algorithm), and sha512 if
// the client said so (POST ?digest-algorithm=sha512, distribution-spec
// end-4c) or, when it said nothing, while the upload is at most
// speculativeMax bytes long: the client names the digest only at the end,
// clients that push sha512 without saying so (the conformance suite) push
// small blobs, and SHA-512 costs several times SHA-256 (a third of a
// 300 MiB push's time on a 2-core machine).
var uploadAlgorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// defaultSpeculativeMax is how far an upload that named no algorithm is
// also hashed with sha512.
const defaultSpeculativeMax = 16 << 20

// SupportedAlgorithm reports whether alg may name an upload's digest.
func SupportedAlgorithm(alg digest.Algorithm) bool {
	return alg == digest.SHA256 || alg == digest.SHA512
}

// sessionAlgorithms are what a session without bytes hashes, given the
// algorithm its client named (empty: none).
func sessionAlgorithms(named digest.Algorithm) []digest.Algorithm {
	if named == digest.SHA256 {
		return []digest.Algorithm{digest.SHA256}
	}
	return uploadAlgorithms
}

// hashers is the running hash of an upload by algorithm; a nil hash is
// one the session stopped (prune), saved as an empty state so that a
// server that does not know of pruning fails to restore it rather than
// starting it afresh mid-stream.
type hashers map[digest.Algorithm]hash.Hash

func newHash(alg digest.Algorithm) hash.Hash {
	if alg == digest.SHA512 {
		return sha512.New()
	}
	return sha256.New()
}

// restoreHashers rebuilds the running hashes from their saved states (Go's
// sha256/sha512 implement encoding.BinaryUnmarshaler): those saved, or,
// for a session without bytes yet, fresh ones of what it hashes.
//
// A state must cover exactly offset bytes (Go's states end with the count
// of bytes hashed, big-endian): one that does not (written by a server
// that restarted a hash mid-stream) counts as not hashed, so a commit with
// its algorithm is refused rather than verified against part of the blob.
func restoreHashers(states map[string][]byte, named digest.Algorithm, offset int64) (hashers, error) {
	hs := hashers{}
	if len(states) == 0 {
		for _, alg := range sessionAlgorithms(named) {
			hs[alg] = newHash(alg)
		}
		return hs, nil
	}
	for name, st := range states {
		alg := digest.Algorithm(name)
		if !SupportedAlgorithm(alg) {
			return nil, fmt.Errorf("restore hash state: unknown algorithm %q", name)
		}
		if len(st) < 8 || int64(binary.BigEndian.Uint64(st[len(st)-8:])) != offset {
			hs[alg] = nil // pruned, or not this session's bytes
			continue
		}
		h := newHash(alg)
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
			return nil, fmt.Errorf("restore %s hash state: %w", alg, err)
		}
		hs[alg] = h
	}
	if hs[digest.SHA256] == nil {
		return nil, fmt.Errorf("restore hash state: the sha256 state does not cover the session's %d bytes", offset)
	}
	return hs, nil
}

func (hs hashers) Write(p []byte) (int, error) {
	for _, h := range hs {
		if h != nil {
			h.Write(p) // hash.Hash.Write never fails
		}
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
		if h != nil {
			wg.Go(func() { h.Write(p) })
		}
	}
	return wg.Wait
}

func (hs hashers) save() (map[string][]byte, error) {
	out := make(map[string][]byte, len(hs))
	for alg, h := range hs {
		if h == nil {
			out[string(alg)] = []byte{}
			continue
		}
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
	if !ok || h == nil {
		return "", false
	}
	return digest.NewDigest(alg, h), true
}
