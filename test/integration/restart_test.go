package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestRestartDurability checks what a crash (SIGKILL) may and may not lose:
// acknowledged blobs, manifests and tags must read back byte for byte; an
// upload session may survive (then it resumes from no less than the
// acknowledged offset) or be forgotten (404 BLOB_UPLOAD_UNKNOWN), nothing
// else; and no committed blob may ever fail its digest. With
// SKIFF_IT_BACKEND=aws the stand-ins keep the state across the kill; the
// killed request's claim on the session then lasts its lease, so an
// immediate resume may be refused with 416 (see resumeAfterStaleClaim).
func TestRestartDurability(t *testing.T) {
	t.Parallel()
	requireOwnServer(t, "it kills and restarts it")
	reg := startRegistry(t)
	const repo = "durable/one"
	rng := newRand("restart")

	// Acknowledged content: a monolithic blob upload, a config, a tagged manifest.
	layer := randomBytes(rng, 512*1024)
	layerDesc := monolithicUpload(t, reg, repo, mediaTypeLayerGzip, layer)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	configDesc := monolithicUpload(t, reg, repo, mediaTypeImageConfig, config)
	manifestBytes := mustJSON(t, manifest{
		SchemaVersion: 2, MediaType: mediaTypeImageManifest, Config: &configDesc, Layers: []descriptor{layerDesc},
	})
	manifestDigest := digest.FromBytes(manifestBytes)
	resp := send(t, http.MethodPut, reg.url("/v2/"+repo+"/manifests/v1"),
		http.Header{"Content-Type": {mediaTypeImageManifest}}, bytes.NewReader(manifestBytes))
	if resp.status != http.StatusCreated {
		t.Fatalf("PUT manifest: want 201, got %s", resp)
	}

	// A chunked session with one acknowledged 6 MiB chunk.
	big := randomBytes(rng, 14*mib)
	bigDigest := digest.FromBytes(big)
	const acked = 6 * mib
	resp = send(t, http.MethodPost, reg.url("/v2/"+repo+"/blobs/uploads/"),
		nil, nil)
	if resp.status != http.StatusAccepted {
		t.Fatalf("POST upload: want 202, got %s", resp)
	}
	session := reg.resolve(t, resp.header.Get("Location"))
	resp = send(t, http.MethodPatch, session, http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("0-%d", acked-1)},
	}, bytes.NewReader(big[:acked]))
	if resp.status != http.StatusAccepted {
		t.Fatalf("PATCH first chunk: want 202, got %s", resp)
	}
	if got, want := resp.header.Get("Range"), fmt.Sprintf("0-%d", acked-1); got != want {
		t.Errorf("PATCH first chunk: Range %q, want %q", got, want)
	}
	session = reg.resolve(t, resp.header.Get("Location"))

	// A second chunk streaming when the server dies.
	inflight := inflightPatch(t, reg, session, big[acked:12*mib], acked)
	reg.kill()
	inflight.finish(t)

	reg.start()

	// Acknowledged content is intact.
	for _, b := range []struct {
		desc descriptor
		data []byte
	}{{layerDesc, layer}, {configDesc, config}} {
		got := send(t, http.MethodGet, reg.url("/v2/"+repo+"/blobs/"+b.desc.Digest.String()), nil, nil)
		if got.status != http.StatusOK || !bytes.Equal(got.body, b.data) {
			t.Errorf("after restart: GET blob %s: want 200 and the %d acknowledged bytes, got status %d, %d bytes, digest %s",
				b.desc.Digest, len(b.data), got.status, len(got.body), digest.FromBytes(got.body))
		}
	}
	for _, ref := range []string{"v1", manifestDigest.String()} {
		got := send(t, http.MethodGet, reg.url("/v2/"+repo+"/manifests/"+ref), acceptManifests(), nil)
		if got.status != http.StatusOK || !bytes.Equal(got.body, manifestBytes) {
			t.Errorf("after restart: GET manifest %s: want 200 and the acknowledged manifest %s, got %s", ref, manifestDigest, got)
		}
	}

	// The session survives with at least the acknowledged bytes, or is gone.
	status := send(t, http.MethodGet, session, nil, nil)
	switch status.status {
	case http.StatusNoContent:
		end, ok := parseRange(status.header.Get("Range"))
		if !ok {
			t.Fatalf("after restart: GET upload session: 204 with bad Range %q: %s", status.header.Get("Range"), status)
		}
		next := end + 1
		if next < acked || next > 12*mib {
			t.Fatalf("after restart: GET upload session: Range %q, want an end between %d (acknowledged) and %d (sent)",
				status.header.Get("Range"), acked-1, 12*mib-1)
		}
		t.Logf("after restart: upload session kept %d bytes (%d acknowledged); resuming", next, acked)
		if loc := status.header.Get("Location"); loc != "" {
			session = reg.resolve(t, loc)
		}
		if claimsOutliveProcess() {
			resumeAfterStaleClaim(t, reg, repo, session, big, next)
		} else {
			resumeAndCommit(t, reg, repo, session, big, next)
		}
	case http.StatusNotFound:
		if codes := errorCodes(status.body); !slices.Contains(codes, "BLOB_UPLOAD_UNKNOWN") {
			t.Errorf("after restart: GET upload session: 404 without BLOB_UPLOAD_UNKNOWN: %s", status)
		}
		t.Logf("after restart: upload session forgotten (404 BLOB_UPLOAD_UNKNOWN)")
		if head := send(t, http.MethodHead, reg.url("/v2/"+repo+"/blobs/"+bigDigest.String()), nil, nil); head.status != http.StatusNotFound {
			t.Errorf("after restart: HEAD of the never-committed blob %s: want 404, got %s", bigDigest, head)
		}
	default:
		t.Errorf("after restart: GET upload session: want 204 with Range or 404 BLOB_UPLOAD_UNKNOWN, got %s", status)
	}
}

// monolithicUpload pushes a blob with POST ?digest= (one request, 201).
func monolithicUpload(t *testing.T, reg *registry, repo, mediaType string, data []byte) descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	resp := send(t, http.MethodPost, reg.url("/v2/"+repo+"/blobs/uploads/?digest="+d.String()),
		http.Header{"Content-Type": {"application/octet-stream"}}, bytes.NewReader(data))
	if resp.status == http.StatusAccepted && serverKind == flavourDistribution {
		// The spec lets a registry answer 202 and expect a PUT, and
		// distribution does; skiff promises the single-request upload.
		resp = send(t, http.MethodPut, withQuery(reg.resolve(t, resp.header.Get("Location")), "digest", d.String()),
			http.Header{"Content-Type": {"application/octet-stream"}}, bytes.NewReader(data))
	}
	if resp.status != http.StatusCreated {
		t.Fatalf("POST ?digest= monolithic upload of %s: want 201, got %s", d, resp)
	}
	if got := resp.header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		t.Errorf("POST ?digest=%s: Docker-Content-Digest %s", d, got)
	}
	return descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// inflight is a PATCH whose body is still streaming from an io.Pipe.
type inflight struct {
	pw   *io.PipeWriter
	done chan struct{}
	resp *http.Response
	err  error
}

// inflightPatch starts a chunk PATCH of data at offset and returns once half
// of it has been handed to the connection, with the rest still pending.
func inflightPatch(t *testing.T, reg *registry, session string, data []byte, offset int) *inflight {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPatch, session, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+len(data)-1))
	f := &inflight{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.resp, f.err = http.DefaultClient.Do(req)
		if f.resp != nil {
			_, _ = io.Copy(io.Discard, f.resp.Body)
			f.resp.Body.Close()
		}
	}()
	half := len(data) / 2
	for sent := 0; sent < half; sent += 256 * 1024 {
		if _, err := pw.Write(data[sent : sent+256*1024]); err != nil {
			// The server answered (or dropped the connection) before the
			// body was sent: report below, in finish.
			break
		}
	}
	// Let the server read what is in the socket before it dies.
	time.Sleep(300 * time.Millisecond)
	return f
}

// finish unblocks the client after the kill and reports what it saw.
func (f *inflight) finish(t *testing.T) {
	t.Helper()
	f.pw.CloseWithError(errors.New("test: server killed"))
	<-f.done
	switch {
	case f.err != nil:
		t.Logf("in-flight PATCH ended with a transport error, as expected: %v", f.err)
	default:
		t.Logf("in-flight PATCH got a response before the kill: %d %v", f.resp.StatusCode, f.resp.Header)
	}
}

// resumeAndCommit sends big[next:] and commits the upload, then checks the
// blob reads back whole and correct.
func resumeAndCommit(t *testing.T, reg *registry, repo, session string, big []byte, next int) {
	t.Helper()
	resp := resumePatch(t, session, big, next)
	if resp.status != http.StatusAccepted {
		t.Fatalf("resume PATCH from %d: want 202, got %s", next, resp)
	}
	commitResumed(t, reg, repo, reg.resolve(t, resp.header.Get("Location")), big)
}

func resumePatch(t *testing.T, session string, big []byte, next int) apiResponse {
	t.Helper()
	return send(t, http.MethodPatch, session, http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("%d-%d", next, len(big)-1)},
	}, bytes.NewReader(big[next:]))
}

// resumeAfterStaleClaim is resumeAndCommit for a backend whose upload claims
// outlive a killed process (aws: the store is shared, so a restarted server
// can't tell the killed writer from a live one on another machine). The
// killed PATCH held the session's claim, whose lease (one minute) is still
// running, so an immediate resume may get either:
//   - 416 BLOB_UPLOAD_INVALID "another request is writing ..." with the
//     session's Range unchanged: accepted. The test then checks the session
//     still reports the same Range and the blob was not committed, and stops
//     there, unless SKIFF_IT_WAIT_CLAIM=1 makes it retry until the lease runs
//     out (about a minute) and finish the upload;
//   - 202: the claim was not live (the kill came before the claim was written,
//     or after it was released); the upload is finished as on local.
func resumeAfterStaleClaim(t *testing.T, reg *registry, repo, session string, big []byte, next int) {
	t.Helper()
	resp := resumePatch(t, session, big, next)
	if resp.status == http.StatusAccepted {
		t.Logf("resume PATCH from %d: 202, the killed request's claim did not block the session", next)
		commitResumed(t, reg, repo, reg.resolve(t, resp.header.Get("Location")), big)
		return
	}
	if resp.status != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("resume PATCH from %d right after the restart: want 202, or 416 while the killed request's claim lasts; got %s", next, resp)
	}
	if codes := errorCodes(resp.body); !slices.Contains(codes, "BLOB_UPLOAD_INVALID") || !strings.Contains(string(resp.body), "another request") {
		t.Errorf("resume PATCH from %d: 416 without BLOB_UPLOAD_INVALID \"another request ...\": %s", next, resp)
	}
	if end, ok := parseRange(resp.header.Get("Range")); !ok || end+1 != next {
		t.Errorf("resume PATCH from %d: 416 with Range %q, want \"0-%d\" (the session's offset)", next, resp.header.Get("Range"), next-1)
	}
	t.Logf("resume PATCH from %d: 416 %q: the killed request's claim still holds the session (aws backend: a claim lasts its lease)",
		next, resp.body)
	if status := send(t, http.MethodGet, session, nil, nil); status.status != http.StatusNoContent || status.header.Get("Range") != fmt.Sprintf("0-%d", next-1) {
		t.Errorf("GET upload session after the refused resume: want 204 with Range 0-%d, got %s", next-1, status)
	}
	d := digest.FromBytes(big)
	if head := send(t, http.MethodHead, reg.url("/v2/"+repo+"/blobs/"+d.String()), nil, nil); head.status != http.StatusNotFound {
		t.Errorf("HEAD of the never-committed blob %s: want 404, got %s", d, head)
	}
	if os.Getenv("SKIFF_IT_WAIT_CLAIM") != "1" {
		t.Logf("not waiting for the claim's lease to run out (set SKIFF_IT_WAIT_CLAIM=1 to resume after it)")
		return
	}
	deadline := time.Now().Add(claimWait)
	for {
		time.Sleep(5 * time.Second)
		resp = resumePatch(t, session, big, next)
		if resp.status == http.StatusAccepted {
			t.Logf("resume PATCH from %d: 202 once the claim's lease ran out", next)
			commitResumed(t, reg, repo, reg.resolve(t, resp.header.Get("Location")), big)
			return
		}
		if resp.status != http.StatusRequestedRangeNotSatisfiable || time.Now().After(deadline) {
			t.Fatalf("resume PATCH from %d, waiting up to %s for the claim's lease: got %s", next, claimWait, resp)
		}
	}
}

// claimWait is how long SKIFF_IT_WAIT_CLAIM=1 waits for a killed request's
// claim to lapse: the server's one-minute lease plus slack.
const claimWait = 90 * time.Second

// commitResumed commits the upload at session with an empty PUT ?digest= and
// checks that the blob reads back as big.
func commitResumed(t *testing.T, reg *registry, repo, session string, big []byte) {
	t.Helper()
	d := digest.FromBytes(big)
	resp := send(t, http.MethodPut, withQuery(session, "digest", d.String()),
		http.Header{"Content-Type": {"application/octet-stream"}}, bytes.NewReader(nil))
	if resp.status != http.StatusCreated {
		t.Fatalf("commit PUT ?digest=%s after resume: want 201, got %s (a DIGEST_INVALID here means the server kept bytes that were never acknowledged or not sent)", d, resp)
	}
	got := send(t, http.MethodGet, reg.url("/v2/"+repo+"/blobs/"+d.String()), nil, nil)
	if got.status != http.StatusOK || !bytes.Equal(got.body, big) {
		t.Errorf("GET resumed blob %s: want 200 and %d bytes, got status %d, %d bytes, digest %s",
			d, len(big), got.status, len(got.body), digest.FromBytes(got.body))
	}
}

var rangeRE = regexp.MustCompile(`^(?:bytes=)?0-(\d+)$`)

// parseRange parses an upload Range header "0-<end>" (inclusive end).
func parseRange(s string) (int, bool) {
	m := rangeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// resolve turns a Location header (absolute or relative) into an absolute URL.
func (r *registry) resolve(t *testing.T, location string) string {
	t.Helper()
	if location == "" {
		t.Fatalf("response has no Location header")
	}
	base, _ := url.Parse("http://" + r.host + "/")
	u, err := base.Parse(location)
	if err != nil {
		t.Fatalf("bad Location %q: %v", location, err)
	}
	return u.String()
}

func withQuery(rawURL, key, value string) string {
	sep := "?"
	if strings.Contains(rawURL, "?") {
		sep = "&"
	}
	return rawURL + sep + url.QueryEscape(key) + "=" + url.QueryEscape(value)
}
