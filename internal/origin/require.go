package origin

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Require serves next only the requests carrying a secret s accepts, and
// takes the header off before next (and its logs) see it; others get 403
// DENIED, as the functions answer them. deploy.HealthPath is answered 200
// without the secret: the load balancer's health checks cannot send it,
// and the answer says nothing. A nil s requires nothing.
func Require(next http.Handler, s *Secret, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == deploy.HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		got := r.Header.Get(deploy.OriginSecretHeader)
		r.Header.Del(deploy.OriginSecretHeader)
		if s != nil {
			ok, refreshErr := s.Allows(r.Context(), got)
			if refreshErr != nil {
				log.WarnContext(r.Context(), "could not re-read the origin secret; the known values still apply", "error", refreshErr)
			}
			if !ok {
				log.WarnContext(r.Context(), "request refused: origin secret missing or wrong",
					"method", r.Method, "path", r.URL.EscapedPath(), "remote", r.RemoteAddr, "secret_present", got != "")
				body := oci.Envelope(oci.Errorf(oci.CodeDenied, "requests must come through the registry's front door"))
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write(body)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
