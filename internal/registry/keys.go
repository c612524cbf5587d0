package registry

import "fmt"

// Object key layout in the BlobStore:
//
//	blobs/<alg>/<hex>/<nonce>    a blob or large manifest written whole, verified, by one
//	                             push (no other push writes that key)
//	blobs/uploaded/<upload-id>   blob assembled from a multipart upload (never copied); the
//	                             collector reads its session by that id
//	blobs/<alg>/<hex>            the same, as written before content records (still read)
//
// Which of the copies of a digest is kept is the content record's Key
// (storage.Contents); links and manifests name that copy.
//	uploads/<upload-id>/<offset>-<claim>  buffered tail segments of a live upload
//
// Everything under uploads/ (ScratchPrefix) is scratch: safe to expire
// after the upload TTL.

// ScratchPrefix holds the tail segments of live upload sessions.
const ScratchPrefix = "uploads/"

func uploadedKey(id string) string { return "blobs/uploaded/" + id }

func segmentKey(id string, offset int64, claim string) string {
	return fmt.Sprintf("%s%s/%d-%s", ScratchPrefix, id, offset, claim)
}
