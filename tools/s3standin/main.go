// Command s3standin serves an in-memory S3 (gofakes3) on a loopback
// address, path-style, for Skiff's tests and benchmarks:
//
//	s3standin -addr 127.0.0.1:9090
//
// It prints one line, "s3standin: ready on http://ADDR", once it accepts
// connections, and exits 0 on SIGTERM or SIGINT after finishing requests in
// flight (for up to -grace). Point the SDK at it with
// AWS_ENDPOINT_URL_S3=http://ADDR and any credentials; it checks none.
//
// Objects live in memory (gofakes3's s3mem backend): its disk backends need
// modules Skiff does not require (s3afero: spf13/afero, s3bolt: mgo bson)
// and read whole objects into memory anyway. A multipart upload holds its
// parts, then the joined object, so completing an N-byte upload peaks near
// 3N bytes (measured: a 1 GiB upload of 16 MiB parts, completed and read
// back, took 7.7 s and peaked at 3.2 GB resident, back to 21 MB ten seconds
// after the delete); delete buckets when done.
//
// What gofakes3 v1.2.0 does and does not do is listed at the top of
// internal/storage/awsstore/s3_test.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9090", "listen address (host:port)")
	verbose := flag.Bool("v", false, "log every request gofakes3 reports, not only internal errors")
	grace := flag.Duration("grace", 5*time.Second, "how long shutdown waits for requests in flight")
	flag.Parse()
	// Objects live on the heap and the stand-in shares the machine with the
	// tests: collect early (GOGC 20 unless set; the heap is nearly all byte
	// slices, which the collector does not scan) and hand freed memory back
	// to the OS soon after buckets are emptied.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(20)
	}
	go func() {
		for range time.Tick(10 * time.Second) {
			debug.FreeOSMemory()
		}
	}()
	if err := run(*addr, *verbose, *grace); err != nil {
		fmt.Fprintln(os.Stderr, "s3standin:", err)
		os.Exit(1)
	}
}

func run(addr string, verbose bool, grace time.Duration) error {
	logger := log.New(os.Stderr, "s3standin: ", log.LstdFlags)
	levels := []gofakes3.LogLevel{gofakes3.LogErr}
	if verbose {
		levels = append(levels, gofakes3.LogWarn, gofakes3.LogInfo)
	}
	faker := gofakes3.New(s3mem.New(),
		gofakes3.WithLogger(levelLog{logger, levels}),
		// The tests create their buckets; a typo must fail, not auto-create.
		gofakes3.WithAutoBucket(false),
	)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           faker.Server(),
		ReadHeaderTimeout: 10 * time.Second,
		// No read or write timeout: multi-GiB bodies stream for a while.
		ErrorLog: logger,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("s3standin: ready on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
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
