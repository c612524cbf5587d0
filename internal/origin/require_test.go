package origin

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skiff-registry/skiff/internal/deploy"
)

func TestRequire(t *testing.T) {
	t.Parallel()
	var sawHeader []string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHeader = append(sawHeader, r.Header.Get(deploy.OriginSecretHeader))
		w.WriteHeader(http.StatusTeapot)
	})
	h := Require(next, Fixed("s3cret"), slog.New(slog.DiscardHandler))
	tests := []struct {
		method, path, secret string
		want                 int
		inBody               string
	}{
		{http.MethodGet, deploy.HealthPath, "", http.StatusOK, "ok"},
		{http.MethodHead, deploy.HealthPath, "", http.StatusOK, ""},
		{http.MethodPost, deploy.HealthPath, "", http.StatusForbidden, "DENIED"}, // only reads are health checks
		{http.MethodGet, "/v2/", "", http.StatusForbidden, "front door"},
		{http.MethodGet, "/v2/", "wrong", http.StatusForbidden, "DENIED"},
		{http.MethodGet, "/v2/", "s3cret", http.StatusTeapot, ""},
	}
	for _, tc := range tests {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.secret != "" {
			req.Header.Set(deploy.OriginSecretHeader, tc.secret)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.inBody) {
			t.Errorf("%s %s (secret %q): %d %q, want %d with %q", tc.method, tc.path, tc.secret, rec.Code, rec.Body, tc.want, tc.inBody)
		}
	}
	if len(sawHeader) != 1 || sawHeader[0] != "" {
		t.Errorf("the handler saw the secret header as %q, want it removed", sawHeader)
	}
}
