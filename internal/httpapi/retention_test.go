package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
)

const retentionPath = "/v2/_skiff/retention"

// TestOperatorRetention: the retention policies' routes, shaped like the
// index policies' and in a namespace of their own.
func TestOperatorRetention(t *testing.T) {
	t.Parallel()
	srv := newPolicyServer(t, true)
	put := func(prefix, body string) response {
		return do(t, http.MethodPut, srv.URL+retentionPath+"/"+prefix, []byte(body), alice)
	}
	r := put("ci/", `{"untaggedAfter":"7d","keepTags":[{"pattern":"pr-.*","last":5}]}`)
	rec := decodeJSON[policy.RetentionRecord](t, r)
	if r.status != http.StatusOK || rec.Policy.Prefix != "ci" || rec.Policy.UntaggedAfter.String() != "7d" || !strings.HasPrefix(rec.UpdatedBy, "alice via ") {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	r = put("ci", `{"prefix":"ci/","untaggedAfter":"12h"}`)
	rec = decodeJSON[policy.RetentionRecord](t, r)
	if rec.Previous == nil || len(rec.Previous.KeepTags) != 1 {
		t.Errorf("second PUT: previous %+v", rec.Previous)
	}
	got := decodeJSON[policy.RetentionRecord](t, do(t, http.MethodGet, srv.URL+retentionPath+"/ci", nil, nil))
	if got.Policy.UntaggedAfter.String() != "12h0m0s" || got.Version != rec.Version {
		t.Errorf("GET: %+v", got)
	}
	list := decodeJSON[httpapi.RetentionList](t, do(t, http.MethodGet, srv.URL+retentionPath, nil, nil))
	if len(list.Policies) != 1 {
		t.Errorf("list: %+v", list)
	}
	if pl := decodeJSON[httpapi.PolicyList](t, do(t, http.MethodGet, srv.URL+policiesPath, nil, nil)); len(pl.Policies) != 0 {
		t.Errorf("a retention policy shows among the index policies: %+v", pl)
	}
	del := decodeJSON[policy.RetentionRecord](t, do(t, http.MethodDelete, srv.URL+retentionPath+"/ci", nil, alice))
	if !del.Deleted || del.Previous == nil {
		t.Errorf("DELETE: %+v", del)
	}
	msg := wantError(t, do(t, http.MethodGet, srv.URL+retentionPath+"/ci", nil, nil), http.StatusNotFound, "POLICY_UNKNOWN")
	if !strings.Contains(msg, "no retention policy is set for prefix ci") {
		t.Errorf("GET after DELETE: %q", msg)
	}
	wantError(t, do(t, http.MethodDelete, srv.URL+retentionPath+"/ci", nil, alice), http.StatusNotFound, "POLICY_UNKNOWN")
	hist := decodeJSON[httpapi.RetentionHistory](t, do(t, http.MethodGet, srv.URL+"/v2/_skiff/retention-history/ci", nil, nil))
	if len(hist.Changes) != 3 || hist.Changes[0].Action != "set" || hist.Changes[2].Action != "delete" {
		t.Errorf("history: %+v", hist)
	}

	for _, tc := range []struct {
		prefix, body string
		status       int
		want         string
	}{
		{"ci", ``, 400, "the body is empty; send a JSON retention policy"},
		{"ci", `{}`, 400, "needs untaggedAfter"},
		{"ci", `{"untaggedAfter":7}`, 400, "duration is a string"},
		{"ci", `{"untaggedAfter":"soon"}`, 400, "not one such as 30d"},
		{"ci", `{"keepTags":[{"pattern":"v(","last":1}]}`, 400, "not a regular expression"},
		{"ci", `{"keepTags":[{"pattern":"v.*","last":0}]}`, 400, "between 1 and"},
		{"ci", `{"untaggedAfter":"1d","indexChildren":"none"}`, 400, `unknown field "indexChildren"`},
		{"ci", `{"untaggedAfter":"1d"} {}`, 400, "data after the JSON retention policy"},
		{"ci", `{"prefix":"other","untaggedAfter":"1d"}`, 400, "the body names prefix"},
		{"Bad", `{"untaggedAfter":"1d"}`, 400, "not a repository name"},
		{"ci", `{"keepTags":[{"pattern":"` + strings.Repeat("a", 70<<10) + `","last":1}]}`, 413, "exceeds 65536 bytes"},
	} {
		msg := wantError(t, put(tc.prefix, tc.body), tc.status, "POLICY_INVALID")
		if !strings.Contains(msg, tc.want) {
			t.Errorf("PUT %s %.60q: %q, want %q", tc.prefix, tc.body, msg, tc.want)
		}
	}
}
