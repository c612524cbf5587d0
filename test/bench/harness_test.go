package bench

import (
	"net/http"
	"testing"
)

// TestHarness runs the benchmarks' client flows at a small size on both
// backends (aws skips without the stand-ins, like the benchmarks), so
// `go test ./...` notices when they stop working (an API change, a port
// method the counters miss) before `make bench` does. It asserts that the
// flows succeed and are counted, not what they cost: the costs are the
// benchmarks' to report.
func TestHarness(t *testing.T) {
	t.Run(backendAWS, func(t *testing.T) { harness(t, newAWSEnv(t)) })
	t.Run(backendLocal, func(t *testing.T) { harness(t, newLocalEnv(t)) })
}

func harness(t *testing.T, e *env) {
	const repo = "harness/repo"

	p, d := newBlob(smallBlobSize)
	e.reset()
	if err := e.headBlob(repo, d, http.StatusNotFound); err != nil {
		t.Fatal(err)
	}
	if err := e.pushMonolithic(repo, p, d); err != nil {
		t.Fatal(err)
	}
	if err := e.headBlob(repo, d, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	p, d = newBlob(smallBlobSize)
	if err := e.postBlob(repo, p, d); err != nil {
		t.Fatal(err)
	}

	// Over one part (8 MiB), so parts, a tail segment and a streamed body
	// are all exercised.
	const size = 10 << 20
	tl := newTally()
	e.reset()
	d, err := e.pushChunked(repo, newSource(), size, chunkSize)
	if err != nil {
		t.Fatalf("chunked push: %v", err)
	}
	tl.add(e, size)
	complete := "Blob.CompleteMultipart"
	if e.kind == backendAWS {
		complete = "S3.CompleteMultipartUpload"
	}
	if tl.sent < size || tl.ops[complete] != 1 || tl.port["Blob.UploadPart"] != size {
		t.Errorf("chunked push of %d bytes counted %d bytes sent, %v by port method, requests %v", size, tl.sent, tl.port, tl.ops)
	}
	if err := e.headBlob(repo, d, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	if d, err = e.pushStream(repo, newSource(), size); err != nil {
		t.Fatalf("streamed push: %v", err)
	}
	if err := e.headBlob(repo, d, http.StatusOK); err != nil {
		t.Fatal(err)
	}

	img, err := e.pushImageBlobs(repo, 3, 64)
	if err != nil {
		t.Fatal(err)
	}
	child := img.manifest("child")
	if err := e.putManifest(repo, "child", "application/vnd.oci.image.manifest.v1+json", child); err != nil {
		t.Fatal(err)
	}
	if err := putTags(t.Context(), e.meta, repo, img.config.Digest, 5); err != nil {
		t.Fatal(err)
	}
	tags, pages, err := e.listTags(repo)
	if err != nil || tags != 6 || pages != 1 {
		t.Errorf("listTags = %d tags, %d pages, %v; want 6, 1, nil", tags, pages, err)
	}

	h := startHeapSampler()
	peak, n := h.stop()
	if peak.objects == 0 || peak.goal == 0 || n == 0 {
		t.Errorf("heap sampler: peaks %+v after %d samples", peak, n)
	}
}
