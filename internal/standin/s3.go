package standin

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an in-memory S3 (gofakes3 over its s3mem backend, with multipart
// uploads of our own: multipart.go), path-style, served on a loopback port
// of this process. Objects live on the heap: a multipart upload holds its
// parts, then the object, so completing an N-byte upload peaks near 2N
// bytes. Delete buckets when done.
//
// What gofakes3 v1.2.0 does and does not do is listed at the top of
// internal/storage/awsstore/s3_test.go.
type S3 struct {
	URL string // http://127.0.0.1:PORT
	srv *http.Server
	ln  net.Listener
}

// S3Handler is gofakes3 as Skiff's tests use it: buckets are never created
// on the fly (a typo must fail), and only internal errors are logged, to
// logger (verbose: every request it reports).
func S3Handler(logger *log.Logger, verbose bool) http.Handler {
	levels := []gofakes3.LogLevel{gofakes3.LogErr}
	if verbose {
		levels = append(levels, gofakes3.LogWarn, gofakes3.LogInfo)
	}
	faker := gofakes3.New(newMultipart(s3mem.New()),
		gofakes3.WithLogger(levelLog{logger, levels}),
		gofakes3.WithAutoBucket(false),
	)
	return faker.Server()
}

// StartS3 serves S3Handler on addr (127.0.0.1:0: any free port).
// A nil logger writes to stderr.
func StartS3(addr string, logger *log.Logger) (*S3, error) {
	if logger == nil {
		logger = log.New(os.Stderr, "s3standin: ", log.LstdFlags)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           S3Handler(logger, false),
		ReadHeaderTimeout: 10 * time.Second,
		// No read or write timeout: multi-GiB bodies stream for a while.
		ErrorLog: logger,
	}
	go func() { _ = srv.Serve(ln) }()
	return &S3{URL: "http://" + ln.Addr().String(), srv: srv, ln: ln}, nil
}

// Close stops serving after the requests in flight, waiting up to grace.
func (s *S3) Close(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// levelLog prints gofakes3's messages of the chosen levels (gofakes3.StdLog
// ignores the logger it is given and writes to the global one).
type levelLog struct {
	l      *log.Logger
	levels []gofakes3.LogLevel
}

func (g levelLog) Print(level gofakes3.LogLevel, v ...any) {
	for _, lv := range g.levels {
		if lv == level {
			g.l.Println(append([]any{level}, v...)...)
			return
		}
	}
}
