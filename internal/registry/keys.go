package registry

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Object key layout in the BlobStore:
//
//	blobs/<alg>/<hex>            content-addressed blob or large manifest, written verified
//	blobs/uploaded/<upload-id>   blob assembled from a multipart upload (never copied)
//	uploads/<upload-id>/<offset>-<claim>  buffered tail segments of a live upload
//
// Everything under uploads/ (ScratchPrefix) is scratch: safe to expire
// after the upload TTL.

// ScratchPrefix holds the tail segments of live upload sessions.
const ScratchPrefix = "uploads/"

func contentKey(d digest.Digest) string {
	return fmt.Sprintf("blobs/%s/%s", d.Algorithm(), d.Encoded())
}

func uploadedKey(id string) string { return "blobs/uploaded/" + id }

func segmentKey(id string, offset int64, claim string) string {
	return fmt.Sprintf("%s%s/%d-%s", ScratchPrefix, id, offset, claim)
}
