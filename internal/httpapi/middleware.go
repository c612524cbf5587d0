package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// info collects what the access line reports about one request.
type info struct {
	id, route, repo, arg, err, user string
}

type infoKey struct{}

func requestInfo(ctx context.Context) *info {
	if i, ok := ctx.Value(infoKey{}).(*info); ok {
		return i
	}
	return &info{}
}

// statusWriter records the status and body bytes of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog writes one line per request. It never logs headers, so
// credentials and presigned URLs stay out of the logs.
func (a *API) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var b [8]byte
		_, _ = rand.Read(b[:])
		i := &info{id: hex.EncodeToString(b[:])}
		sw := &statusWriter{ResponseWriter: w}
		sw.Header().Set("X-Request-Id", i.id)
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), infoKey{}, i)))
		attrs := []slog.Attr{
			slog.String("request_id", i.id),
			slog.String("method", r.Method),
			slog.String("route", i.route),
			slog.String("repo", i.repo),
			slog.String("ref", i.arg),
			slog.String("user", i.user),
			slog.Int("status", sw.status),
			slog.Int64("bytes_in", max(r.ContentLength, 0)),
			slog.Int64("bytes_out", sw.bytes),
			slog.Int64("dur_ms", time.Since(start).Milliseconds()),
		}
		level := slog.LevelInfo
		if i.err != "" {
			attrs = append(attrs, slog.String("error", i.err))
			switch {
			case sw.status == http.StatusInsufficientStorage:
				level = slog.LevelWarn // logged once a minute at error level (logFull)
			case sw.status >= 500:
				level = slog.LevelError
			}
		}
		a.opts.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// recoverer turns a panic into a logged 500: no panic reaches a client
// as a dropped connection, and the process keeps serving.
func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.opts.log.ErrorContext(r.Context(), "panic", "request_id", requestInfo(r.Context()).id, "panic", v, "stack", string(debug.Stack()))
				a.writeError(w, r, errPanic)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
