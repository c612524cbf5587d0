package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/directapi"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/testenv"
	"github.com/skiff-registry/skiff/internal/teststores"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// directServer is the API over the S3 and DynamoDB stand-ins (a store
// that presigns parts), with 64 KiB direct parts.
func directServer(t *testing.T) *httptest.Server {
	t.Helper()
	testenv.AWS(t)
	s := teststores.AWS(t)
	reg, err := registry.New(s.Blobs, s.Meta, registry.WithDirectPart(testPart))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(reg))
	t.Cleanup(srv.Close)
	return srv
}

// TestDirectUploadHTTP: the extension end to end over HTTP, the parts PUT
// to the S3 stand-in's presigned URLs; /v2/ advertises it; each bad
// request gets its error code and status.
func TestDirectUploadHTTP(t *testing.T) {
	t.Parallel()
	srv := directServer(t)
	if h := do(t, http.MethodGet, srv.URL+"/v2/", nil, nil).header.Get(directapi.Header); h != directapi.Version {
		t.Errorf("/v2/ %s: %q, want %q", directapi.Header, h, directapi.Version)
	}
	data := bytes.Repeat([]byte("direct!"), 3*testPart/7+5)
	d := digest.FromBytes(data)
	resp := do(t, http.MethodPost, srv.URL+"/v2/d/app/blobs/uploads/?skiff-direct="+itoa(len(data)), nil, nil)
	if resp.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.status, resp.body)
	}
	var start directapi.Start
	if err := json.Unmarshal(resp.body, &start); err != nil || len(start.Parts) != 4 || start.Location == "" {
		t.Fatalf("POST answered %s (%v), want 4 parts", resp.body, err)
	}
	var done directapi.CompleteBody
	off := int64(0)
	for _, p := range start.Parts {
		req, _ := http.NewRequest(http.MethodPut, p.URL, bytes.NewReader(data[off:off+p.Size]))
		presp, err := http.DefaultClient.Do(req)
		if err != nil || presp.StatusCode != http.StatusOK {
			t.Fatalf("PUT part %d to its URL: %v %v", p.Number, presp, err)
		}
		presp.Body.Close()
		done.Parts = append(done.Parts, directapi.PartETag{Number: p.Number, ETag: presp.Header.Get("ETag")})
		off += p.Size
	}
	body, _ := json.Marshal(done)
	resp = do(t, http.MethodPut, srv.URL+start.Location+"?skiff-direct=complete&digest="+d.String(), body, nil)
	for i := 0; resp.status == http.StatusAccepted && i < 100; i++ {
		resp = do(t, http.MethodPut, srv.URL+resp.header.Get("Location"), nil, nil)
	}
	if resp.status != http.StatusCreated || resp.header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("completion: %d %s", resp.status, resp.body)
	}
	// The GET may redirect to S3: follow it.
	get, err := http.Get(srv.URL + "/v2/d/app/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if get.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Errorf("GET the blob: %d, %d bytes, want the %d uploaded", get.StatusCode, len(got), len(data))
	}

	session := do(t, http.MethodPost, srv.URL+"/v2/d/app/blobs/uploads/?skiff-direct=100", nil, nil).header.Get("Location")
	plain := do(t, http.MethodPost, srv.URL+"/v2/d/app/blobs/uploads/", nil, nil).header.Get("Location")
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		status             int
		code               oci.ErrorCode
	}{
		{"size not a number", http.MethodPost, "/v2/d/app/blobs/uploads/?skiff-direct=lots", nil, 400, oci.CodeSizeInvalid},
		{"size zero", http.MethodPost, "/v2/d/app/blobs/uploads/?skiff-direct=0", nil, 400, oci.CodeSizeInvalid},
		{"size past the largest", http.MethodPost, "/v2/d/app/blobs/uploads/?skiff-direct=" + itoa(registry.DirectMaxSize+1), nil, 400, oci.CodeSizeInvalid},
		{"unknown step", http.MethodPut, session + "?skiff-direct=finish", nil, 400, oci.CodeUnsupported},
		{"no digest", http.MethodPut, session + "?skiff-direct=complete", []byte(`{"parts":[]}`), 400, oci.CodeDigestInvalid},
		{"not JSON", http.MethodPut, session + "?skiff-direct=complete&digest=" + d.String(), []byte(`parts`), 400, oci.CodeBlobUploadInvalid},
		{"unknown field", http.MethodPut, session + "?skiff-direct=complete&digest=" + d.String(), []byte(`{"parts":[],"x":1}`), 400, oci.CodeBlobUploadInvalid},
		{"body too large", http.MethodPut, session + "?skiff-direct=complete&digest=" + d.String(), []byte(`{"parts":[` + strings.Repeat(`{"number":1,"etag":"x"},`, 20000) + `{}]}`), 400, oci.CodeBlobUploadInvalid},
		{"no parts", http.MethodPut, session + "?skiff-direct=complete&digest=" + d.String(), []byte(`{"parts":[]}`), 400, oci.CodeBlobUploadInvalid},
		{"verify before complete", http.MethodPut, session + "?skiff-direct=verify", nil, 400, oci.CodeBlobUploadInvalid},
		{"PATCH a direct session", http.MethodPatch, session, []byte("x"), 400, oci.CodeBlobUploadInvalid},
		{"direct on a spec session", http.MethodPut, plain + "?skiff-direct=verify", nil, 400, oci.CodeBlobUploadInvalid},
		{"another repository", http.MethodPut, strings.Replace(session, "/d/app/", "/d/other/", 1) + "?skiff-direct=verify", nil, 404, oci.CodeBlobUploadUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, tc.method, srv.URL+tc.path, tc.body, nil)
			if resp.status != tc.status || !slices.Contains(resp.codes(t), string(tc.code)) {
				t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, resp.status, resp.body, tc.status, tc.code)
			}
		})
	}
}

// TestDirectUploadUnsupported: a store that cannot presign (the embedded
// one) advertises nothing and refuses to open a direct upload.
func TestDirectUploadUnsupported(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	if h := do(t, http.MethodGet, srv.URL+"/v2/", nil, nil).header.Get(directapi.Header); h != "" {
		t.Errorf("/v2/ advertises direct uploads on the embedded store: %q", h)
	}
	resp := do(t, http.MethodPost, srv.URL+"/v2/d/app/blobs/uploads/?skiff-direct=100", nil, nil)
	if resp.status != http.StatusBadRequest || !slices.Contains(resp.codes(t), string(oci.CodeUnsupported)) {
		t.Errorf("POST ?skiff-direct on the embedded store: %d %s, want 400 UNSUPPORTED", resp.status, resp.body)
	}
}

func itoa[T int | int64](n T) string { return strconv.FormatInt(int64(n), 10) }
