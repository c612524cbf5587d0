package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/server"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// newPolicyServer runs the API over the embedded store wired as `skiff
// serve` wires it (server.New: a policy Store, a Cache in front of it that
// the Store invalidates on every change, the registry reading the Cache),
// serving groups (default all). operator turns the operator API on.
func newPolicyServer(t *testing.T, operator bool, groups ...httpapi.Group) *httptest.Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.OperatorAPI = t.TempDir(), operator
	stores, err := backend.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stores.Close() })
	g := httpapi.GroupAll
	if len(groups) > 0 {
		g = groups[0]
	}
	srv0, err := server.New(t.Context(), cfg, stores, g, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(srv0.Handler)
	t.Cleanup(srv.Close)
	return srv
}

const policiesPath = "/v2/_skiff/policies"

var alice = map[string]string{"X-Skiff-Operator": "alice", "Content-Type": "application/json"}

func decodeJSON[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

// wantError checks status and the single code of an error envelope and
// returns its message.
func wantError(t *testing.T, r response, status int, code string) string {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d: %s", r.status, status, r.body)
	}
	errs, err := oci.ParseEnvelope(r.body)
	if err != nil || len(errs) != 1 {
		t.Fatalf("body %q is not an envelope of one error: %v", r.body, err)
	}
	if string(errs[0].Code) != code || errs[0].Message == "" {
		t.Errorf("error %s %q, want code %s with a message", errs[0].Code, errs[0].Message, code)
	}
	return errs[0].Message
}

func TestOperatorPolicyRoundTrip(t *testing.T) {
	t.Parallel()
	srv := newPolicyServer(t, true)
	base := srv.URL + policiesPath

	if got := decodeJSON[httpapi.PolicyList](t, do(t, "GET", base, nil, nil)); got.Policies == nil || len(got.Policies) != 0 {
		t.Errorf("empty list: got %+v, want an empty array", got)
	}
	r := do(t, "PUT", base+"/mirror/", []byte(`{"indexChildren":"platforms","platforms":["linux/arm64/v8","linux/amd64","linux/amd64"]}`), alice)
	if r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	rec := decodeJSON[policy.Record](t, r)
	want := oci.Policy{Prefix: "mirror", IndexChildren: "platforms", Platforms: []string{"linux/amd64", "linux/arm64/v8"}, ImageBlobs: "required"}
	if diff := cmp.Diff(rec.Policy, want); diff != "" {
		t.Errorf("PUT record policy (-got +want):\n%s", diff)
	}
	if rec.UpdatedBy != "alice via 127.0.0.1" || rec.Previous != nil || rec.UpdatedAt.IsZero() {
		t.Errorf("PUT record: %+v", rec)
	}
	for _, p := range []string{"/mirror", "/mirror/"} {
		got := decodeJSON[policy.Record](t, do(t, "GET", base+p, nil, nil))
		if diff := cmp.Diff(got, rec); diff != "" {
			t.Errorf("GET %s (-got +want):\n%s", p, diff)
		}
	}

	// A prefix may have a component named "history"; the history route has
	// its own root, so neither is ambiguous. No header: anonymous.
	r = do(t, "PUT", base+"/team/history", []byte(`{"prefix":"team/history/","indexChildren":"none","imageBlobs":"optional"}`), nil)
	if r.status != http.StatusOK {
		t.Fatalf("PUT team/history: %d %s", r.status, r.body)
	}
	if rec := decodeJSON[policy.Record](t, r); rec.UpdatedBy != "anonymous via 127.0.0.1" {
		t.Errorf("without %s: updatedBy %q", httpapi.OperatorHeader, rec.UpdatedBy)
	}

	r = do(t, "PUT", base+"/mirror", []byte(`{"indexChildren":"none"}`), map[string]string{"X-Skiff-Operator": "  bob@laptop  "})
	second := decodeJSON[policy.Record](t, r)
	if second.UpdatedBy != "bob@laptop via 127.0.0.1" || second.Previous == nil || second.Previous.IndexChildren != "platforms" {
		t.Errorf("second PUT must record bob and the previous policy: %+v", second)
	}

	list := decodeJSON[httpapi.PolicyList](t, do(t, "GET", base, nil, nil))
	var prefixes []string
	for _, p := range list.Policies {
		prefixes = append(prefixes, p.Policy.Prefix)
	}
	if diff := cmp.Diff(prefixes, []string{"mirror", "team/history"}); diff != "" {
		t.Errorf("list (-got +want):\n%s", diff)
	}

	r = do(t, "DELETE", base+"/mirror/", nil, map[string]string{"X-Skiff-Operator": "carol"})
	tomb := decodeJSON[policy.Record](t, r)
	if !tomb.Deleted || tomb.Previous == nil || tomb.Previous.IndexChildren != "none" || tomb.UpdatedBy != "carol via 127.0.0.1" {
		t.Errorf("DELETE must answer the tombstone with the previous policy: %+v", tomb)
	}
	msg := wantError(t, do(t, "GET", base+"/mirror", nil, nil), http.StatusNotFound, "POLICY_UNKNOWN")
	if !strings.Contains(msg, "mirror") {
		t.Errorf("message %q does not name the prefix", msg)
	}
	wantError(t, do(t, "DELETE", base+"/mirror", nil, nil), http.StatusNotFound, "POLICY_UNKNOWN")

	hist := decodeJSON[httpapi.PolicyHistory](t, do(t, "GET", srv.URL+"/v2/_skiff/history/mirror/", nil, nil))
	var lines []string
	for _, c := range hist.Changes {
		lines = append(lines, c.Action+" by "+c.By)
	}
	if diff := cmp.Diff(lines, []string{"set by alice via 127.0.0.1", "set by bob@laptop via 127.0.0.1", "delete by carol via 127.0.0.1"}); diff != "" {
		t.Errorf("history (-got +want):\n%s", diff)
	}
	if hist := decodeJSON[httpapi.PolicyHistory](t, do(t, "GET", srv.URL+"/v2/_skiff/history/team/history", nil, nil)); len(hist.Changes) != 1 {
		t.Errorf("history of team/history: %+v", hist)
	}
	if hist := decodeJSON[httpapi.PolicyHistory](t, do(t, "GET", srv.URL+"/v2/_skiff/history/never", nil, nil)); hist.Changes == nil || len(hist.Changes) != 0 {
		t.Errorf("history of a prefix never set: got %+v, want an empty array", hist)
	}
}

// TestOperatorInvalid: a refused change leaves policies, list and history
// as they were.
func TestOperatorInvalid(t *testing.T) {
	t.Parallel()
	srv := newPolicyServer(t, true)
	base := srv.URL + policiesPath
	if r := do(t, "PUT", base+"/mirror", []byte(`{"indexChildren":"none"}`), alice); r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	snapshot := func() []string {
		return []string{
			string(do(t, "GET", base+"/mirror", nil, nil).body),
			string(do(t, "GET", base, nil, nil).body),
			string(do(t, "GET", srv.URL+"/v2/_skiff/history/mirror", nil, nil).body),
		}
	}
	before := snapshot()
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		wantMsg                  string
	}{
		{"unknown mode", "PUT", "/mirror", `{"indexChildren":"sometimes"}`, nil, 400, `unknown index-children mode "sometimes"`},
		{"unknown image blobs mode", "PUT", "/mirror", `{"imageBlobs":"maybe"}`, nil, 400, `unknown image-blobs mode "maybe"`},
		{"malformed platform", "PUT", "/mirror", `{"indexChildren":"platforms","platforms":["linux"]}`, nil, 400, "is not os/arch"},
		{"platforms without mode", "PUT", "/mirror", `{"indexChildren":"none","platforms":["linux/amd64"]}`, nil, 400, "only allowed with index-children=platforms"},
		{"empty prefix", "PUT", "/", `{"indexChildren":"none"}`, nil, 400, "is empty"},
		{"invalid prefix", "PUT", "/Mirror", `{"indexChildren":"none"}`, nil, 400, "must be lower case"},
		{"invalid prefix get", "GET", "/mirror//", ``, nil, 400, "is not a repository name or namespace"},
		{"invalid prefix delete", "DELETE", "/-mirror", ``, nil, 400, "is not a repository name or namespace"},
		{"unknown field", "PUT", "/mirror", `{"indexChildren":"all","sparse":true}`, nil, 400, `unknown field "sparse"`},
		{"wrong type", "PUT", "/mirror", `{"indexChildren":"platforms","platforms":"linux/amd64"}`, nil, 400, `"platforms" has the wrong type`},
		{"not JSON", "PUT", "/mirror", `index-children=all`, nil, 400, "is not a JSON policy"},
		{"empty body", "PUT", "/mirror", ``, nil, 400, "the body is empty"},
		{"trailing data", "PUT", "/mirror", `{"indexChildren":"all"} {}`, nil, 400, "data after the JSON policy"},
		{"prefix disagrees", "PUT", "/mirror", `{"prefix":"other","indexChildren":"all"}`, nil, 400, `names prefix "other"`},
		{"body too large", "PUT", "/mirror", `{"indexChildren":"all"}` + strings.Repeat(" ", 64<<10), nil, 413, "exceeds 65536 bytes"},
		{"operator name too long", "PUT", "/mirror", `{"indexChildren":"all"}`, map[string]string{"X-Skiff-Operator": strings.Repeat("a", 129)}, 400, "the limit is 128"},
		{"operator name not printable", "DELETE", "/mirror", ``, map[string]string{"X-Skiff-Operator": "al\u200bice\u0085"}, 400, "printable"},
		{"invalid history prefix", "GET", "/../history/a//b", ``, nil, 400, "not a repository name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := base + tc.path
			if strings.HasPrefix(tc.path, "/../") {
				path = srv.URL + "/v2/_skiff" + strings.TrimPrefix(tc.path, "/..")
			}
			var body []byte
			if tc.body != "" || tc.method == "PUT" {
				body = []byte(tc.body)
			}
			msg := wantError(t, do(t, tc.method, path, body, tc.header), tc.status, "POLICY_INVALID")
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q does not say %q", msg, tc.wantMsg)
			}
		})
	}
	if diff := cmp.Diff(snapshot(), before); diff != "" {
		t.Errorf("a refused change changed something (-got +want):\n%s", diff)
	}
}

// TestOperatorDisabled: without WithOperator every operator path answers
// 404 UNSUPPORTED saying how to turn the API on, and changes nothing.
func TestOperatorDisabled(t *testing.T) {
	t.Parallel()
	srv := newPolicyServer(t, false)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v2/_skiff/policies", ""},
		{"PUT", "/v2/_skiff/policies/mirror", `{"indexChildren":"none"}`},
		{"DELETE", "/v2/_skiff/policies/mirror", ""},
		{"GET", "/v2/_skiff/history/mirror", ""},
		{"GET", "/v2/_skiff/index/mirror/app/latest", ""},
		{"POST", "/v2/_skiff/gc", ""},
		{"GET", "/v2/_skiff/whatever", ""},
	} {
		msg := wantError(t, do(t, c.method, srv.URL+c.path, []byte(c.body), nil), http.StatusNotFound, "UNSUPPORTED")
		if !strings.Contains(msg, "operator API is off") || !strings.Contains(msg, "skiff serve --operator-api") {
			t.Errorf("%s %s: message %q does not say the API is off and how to turn it on", c.method, c.path, msg)
		}
	}
}

func TestOperatorRouting(t *testing.T) {
	t.Parallel()
	srv := newPolicyServer(t, true)
	msg := wantError(t, do(t, "GET", srv.URL+"/v2/_skiff/policy", nil, nil), http.StatusNotFound, "UNSUPPORTED")
	if !strings.Contains(msg, "/v2/_skiff/policies") {
		t.Errorf("unknown operator path: message %q does not list the endpoints", msg)
	}
	wantError(t, do(t, "GET", srv.URL+"/v2/_skiff/index/app", nil, nil), http.StatusNotFound, "UNSUPPORTED")
	r := do(t, "POST", srv.URL+"/v2/_skiff/policies/mirror", nil, nil)
	wantError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
	if got := r.header.Get("Allow"); got != "GET, PUT, DELETE" {
		t.Errorf("Allow %q", got)
	}
	wantError(t, do(t, "GET", srv.URL+"/v2/_skiff/index/Bad/latest", nil, nil), http.StatusBadRequest, "NAME_INVALID")

	// The operator API is in the catalog group (the admin function).
	for g, served := range map[httpapi.Group]bool{httpapi.GroupCatalog: true, httpapi.GroupManifest: false, httpapi.GroupBlob: false} {
		srv := newPolicyServer(t, true, g)
		r := do(t, "GET", srv.URL+policiesPath, nil, nil)
		if (r.status == http.StatusOK) != served {
			t.Errorf("group %d: status %d %s, served want %v", g, r.status, r.body, served)
		}
	}
}

func TestSparseHeader(t *testing.T) {
	t.Parallel()
	for _, operator := range []bool{false, true} {
		srv := newPolicyServer(t, operator)
		for _, method := range []string{"GET", "HEAD"} {
			r := do(t, method, srv.URL+"/v2/", nil, nil)
			if r.status != http.StatusOK || r.header.Get("X-Sparse-Manifest-Support") != "true" {
				t.Errorf("operator=%v %s /v2/: status %d, X-Sparse-Manifest-Support %q", operator, method, r.status, r.header.Get("X-Sparse-Manifest-Support"))
			}
		}
	}
}

// pushPlatformImage pushes a one-layer image for os/arch to repo and
// returns its index descriptor.
func pushPlatformImage(t *testing.T, base, repo, osName, arch string) map[string]any {
	t.Helper()
	config := []byte(`{"architecture":"` + arch + `","os":"` + osName + `"}`)
	layer := []byte("layer of " + osName + "/" + arch)
	pushBlob(t, base, repo, config)
	pushBlob(t, base, repo, layer)
	m := imageManifest(t, config, layer)
	d := digest.FromBytes(m)
	r := do(t, "PUT", base+"/v2/"+repo+"/manifests/"+d.String(), m, map[string]string{"Content-Type": oci.MediaTypeImageManifest})
	if r.status != http.StatusCreated {
		t.Fatalf("push %s/%s manifest: %d %s", osName, arch, r.status, r.body)
	}
	return platformDescriptor(m, osName, arch)
}

func platformDescriptor(m []byte, osName, arch string) map[string]any {
	return map[string]any{
		"mediaType": oci.MediaTypeImageManifest, "digest": digest.FromBytes(m).String(), "size": len(m),
		"platform": map[string]string{"os": osName, "architecture": arch},
	}
}

func indexOf(t *testing.T, annotation string, children ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex, "manifests": children,
		"annotations": map[string]string{"test": annotation},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOperatorPolicyAppliesAtOnce: a policy set through the API governs
// the very next manifest PUT on this server, although the cache had just
// loaded the default; so does its deletion.
func TestOperatorPolicyAppliesAtOnce(t *testing.T) {
	t.Parallel()
	srv := newPolicyServer(t, true)
	const repo = "mirror/app"
	amd := pushPlatformImage(t, srv.URL, repo, "linux", "amd64")
	armManifest := imageManifest(t, []byte(`{"architecture":"arm64","os":"linux"}`), []byte("arm layer"))
	arm := platformDescriptor(armManifest, "linux", "arm64")
	armDigest := digest.FromBytes(armManifest)
	index := indexOf(t, "v1", amd, arm)
	indexHeader := map[string]string{"Content-Type": oci.MediaTypeImageIndex}

	// Under the default policy the absent arm64 child is refused.
	msg := wantError(t, do(t, "PUT", srv.URL+"/v2/"+repo+"/manifests/v1", index, indexHeader), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
	if !strings.Contains(msg, "linux/arm64") || !strings.Contains(msg, armDigest.String()) {
		t.Errorf("refusal %q does not name the platform and digest", msg)
	}

	if r := do(t, "PUT", srv.URL+policiesPath+"/mirror/", []byte(`{"indexChildren":"none"}`), alice); r.status != http.StatusOK {
		t.Fatalf("set policy: %d %s", r.status, r.body)
	}
	r := do(t, "PUT", srv.URL+"/v2/"+repo+"/manifests/v1", index, indexHeader)
	if r.status != http.StatusCreated {
		t.Fatalf("sparse index under index-children=none: %d %s", r.status, r.body)
	}
	indexDigest := r.header.Get("Docker-Content-Digest")

	msg = wantError(t, do(t, "GET", srv.URL+"/v2/"+repo+"/manifests/"+armDigest.String(), nil, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	if !strings.Contains(msg, "linux/arm64") || !strings.Contains(msg, "partial mirror") {
		t.Errorf("GET of the absent child: message %q must name the platform and say partial mirror", msg)
	}

	for _, ref := range []string{"v1", indexDigest} {
		rep := decodeJSON[httpapi.IndexReport](t, do(t, "GET", srv.URL+"/v2/_skiff/index/"+repo+"/"+ref, nil, nil))
		want := httpapi.IndexReport{
			Repository: repo, Digest: indexDigest, MediaType: oci.MediaTypeImageIndex, Present: 1, Absent: 1,
			Children: []registry.ChildStatus{
				{Digest: digest.Digest(amd["digest"].(string)), MediaType: oci.MediaTypeImageManifest, Platform: "linux/amd64", Present: true},
				{Digest: armDigest, MediaType: oci.MediaTypeImageManifest, Platform: "linux/arm64", Present: false},
			},
		}
		if diff := cmp.Diff(rep, want, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("index status of %s (-got +want):\n%s", ref, diff)
		}
	}
	wantError(t, do(t, "GET", srv.URL+"/v2/_skiff/index/"+repo+"/"+amd["digest"].(string), nil, nil), http.StatusBadRequest, "MANIFEST_INVALID")
	wantError(t, do(t, "GET", srv.URL+"/v2/_skiff/index/"+repo+"/nope", nil, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")

	// Deleting the policy applies at once too: a new sparse index is refused.
	if r := do(t, "DELETE", srv.URL+policiesPath+"/mirror", nil, alice); r.status != http.StatusOK {
		t.Fatalf("delete policy: %d %s", r.status, r.body)
	}
	msg = wantError(t, do(t, "PUT", srv.URL+"/v2/"+repo+"/manifests/v2", indexOf(t, "v2", amd, arm), indexHeader), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
	if !strings.Contains(msg, "linux/arm64") {
		t.Errorf("refusal after delete %q does not name the platform", msg)
	}
}

// TestOperatorGC: POST /v2/_skiff/gc runs a pass and answers its report;
// bad parameters are 400 and say what is wrong.
func TestOperatorGC(t *testing.T) {
	t.Parallel()
	srv := newPolicyServer(t, true)
	blob := []byte("nothing names this blob")
	d := digest.FromBytes(blob)
	r := do(t, "POST", srv.URL+"/v2/gc/repo/blobs/uploads/?digest="+d.String(), blob, map[string]string{"Content-Type": "application/octet-stream"})
	if r.status != http.StatusCreated {
		t.Fatalf("push: %d %s", r.status, r.body)
	}
	// With the default grace (a day), the young blob stays, dry or not.
	for _, q := range []string{"?dryRun=true", ""} {
		r = do(t, "POST", srv.URL+"/v2/_skiff/gc"+q, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("gc%s: %d %s", q, r.status, r.body)
		}
		rep := decodeJSON[gc.Report](t, r)
		if rep.DryRun != (q != "") || rep.Links != 1 || len(rep.Deleted) != 0 || rep.Grace != "24h0m0s" {
			t.Errorf("gc%s: report %+v", q, rep)
		}
	}
	for q, want := range map[string]string{"?dryRun=maybe": "dryRun", "?grace=soon": "grace", "?grace=-1h": "grace", "?grace=1h": "shorter than this server's"} {
		msg := wantError(t, do(t, "POST", srv.URL+"/v2/_skiff/gc"+q, nil, nil), http.StatusBadRequest, "UNSUPPORTED")
		if !strings.Contains(msg, want) {
			t.Errorf("gc%s: %q does not name %s", q, msg, want)
		}
	}
	if r := do(t, "GET", srv.URL+"/v2/_skiff/gc", nil, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET gc: %d", r.status)
	}
}
