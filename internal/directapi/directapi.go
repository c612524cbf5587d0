// Package directapi is the wire format of Skiff's direct upload extension
// (not the distribution spec's), shared by the registry's HTTP API and the
// copier that uses it:
//
//	GET  /v2/                                 Skiff-Direct-Upload: v1 when the store takes them
//	POST /v2/<name>/blobs/uploads/?skiff-direct=<size>
//	     202 Start: the session and a presigned URL per part
//	PUT  <each part's URL>                    the part's bytes, straight to S3; its ETag answers
//	PUT  /v2/<name>/blobs/uploads/<id>?skiff-direct=complete&digest=<d>   body Complete
//	     201 (the blob, verified) or 202 Status: hashed so far; then
//	PUT  /v2/<name>/blobs/uploads/<id>?skiff-direct=verify   until 201
//
// A refusal is the spec's error envelope: DIGEST_INVALID (the bytes hash
// to another digest), SIZE_INVALID, BLOB_UPLOAD_INVALID (a part missing or
// with another ETag), UNSUPPORTED (a store that cannot presign).
package directapi

import "time"

// Header and query names.
const (
	// Header, on /v2/, says the registry takes direct uploads (value v1).
	Header = "Skiff-Direct-Upload"
	// Param opens a direct upload (its value the blob's size) on POST, and
	// completes (complete) or goes on verifying (verify) one on PUT.
	Param    = "skiff-direct"
	Complete = "complete"
	Verify   = "verify"
	// Version is Header's value.
	Version = "v1"
)

// Start is the answer to the POST.
type Start struct {
	ID       string    `json:"id"`
	Location string    `json:"location"`
	Size     int64     `json:"size"`
	PartSize int64     `json:"partSize"`
	Expires  time.Time `json:"expires"`
	Parts    []Part    `json:"parts"`
}

// Part is one part to PUT: exactly Size bytes to URL.
type Part struct {
	Number int    `json:"number"`
	Size   int64  `json:"size"`
	URL    string `json:"url"`
}

// CompleteBody lists the parts uploaded, in order, with the ETag each PUT
// answered.
type CompleteBody struct {
	Parts []PartETag `json:"parts"`
}

// PartETag is an uploaded part.
type PartETag struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
}

// Status is a 202's body: the bytes verified so far.
type Status struct {
	Verified int64 `json:"verified"`
	Size     int64 `json:"size"`
}
