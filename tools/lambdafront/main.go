// Command lambdafront is the local front door of Skiff's Lambda functions:
// it stands in for CloudFront and the three Function URLs, so the built
// bootstraps can be tested end to end without AWS.
//
//	lambdafront -functions DIR [-addr 127.0.0.1:0] [-pool 2] [-rie PATH] [-log-dir DIR]
//
// For each function (manifest, blob, catalog; DIR/<fn>/bootstrap, built by
// scripts/functions.sh --arch amd64 --out DIR) it runs -pool
// aws-lambda-rie emulators, each on its own pair of loopback ports: an
// emulator serves one invocation at a time, as a Lambda execution
// environment does, and starts its bootstrap on the first one (a cold
// start). Each request is
//
//   - routed as the CDK stack's distribution routes it: its viewer-request
//     CloudFront Function selects the function of the path's route group,
//     read from the end as internal/httpapi does (routes.go: the same
//     httpapi.RouteGroup; a test runs the stack's JavaScript against it),
//     whichever behaviour matched (the log names the behaviour's function
//     as behavior_fn when the two differ);
//   - answered with the registry's 413 SIZE_INVALID (deploy.TooLargeAdvice)
//     when it is bound for a function and its Content-Length is over the
//     functions' 4 MiB cap, as the viewer-request function answers it;
//   - sent, with -ingest URL, to the ingest service when it is an upload
//     route, streaming (ingest.go), as a stack with Ingest on sends it;
//   - refused with Lambda's bare 413 when its event would exceed the 6 MB
//     payload (a streaming body without Content-Length);
//   - turned into the Function URL event (payload 2.0) the real service
//     would send: lower-cased headers, cookies, rawPath and rawQueryString
//     as sent, binary bodies base64-encoded, X-Forwarded-For extended with
//     the viewer's address, Host naming the Function URL, and the origin
//     secret header CloudFront adds;
//   - sent to a free emulator of that function, and its response event
//     turned back into HTTP. Nothing is followed: a 307 to a presigned S3
//     URL goes to the client as it is.
//
// The functions get lambdafront's own environment (AWS_* for the
// stand-ins, SKIFF_S3_BUCKET, SKIFF_DYNAMODB_TABLE, SKIFF_AUTH_KEY_FILE,
// LOG_LEVEL, ...) plus SKIFF_ORIGIN_SECRET (-origin-secret, random by
// default), SKIFF_REALM (this front door's token URL; empty with
// -realm=false, so the realm comes from X-Forwarded-Host as in a stack
// without a custom domain), SKIFF_AUTH (-auth) and the Lambda variables
// the stack sets (name, memory, timeout).
//
// It logs one JSON line per request (function, instance, status, duration)
// to stderr, prints "lambdafront: ready on http://ADDR" to stdout once
// every emulator listens (and writes ADDR to -addr-file), and on SIGTERM or
// SIGINT stops serving and stops every emulator and bootstrap.
//
// Proxy mode, for functions deployed with their Function URLs but no
// CloudFront in front (LocalStack: localstack/test.sh):
//
//	lambdafront -proxy manifest=URL,blob=URL,catalog=URL -origin-secret-file FILE [-connect HOST:PORT] [-addr ...]
//
// routes the same way and refuses the same oversized events, but forwards
// each request over HTTP to the function's URL, with the headers
// CloudFront would send (proxy.go), instead of running emulators. The
// origin secret must be the deployed one; the functions' configuration
// (realm, auth) is the stack's, so -auth, -realm, -pool and -rie don't
// apply. -connect dials one address (LocalStack's gateway) for every URL.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-registry/skiff/internal/deploy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lambdafront:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0: any free port)")
	addrFile := flag.String("addr-file", "", "write the listen address (host:port) to this file once ready")
	fnDir := flag.String("functions", "", "directory holding manifest/bootstrap, blob/bootstrap and catalog/bootstrap")
	rie := flag.String("rie", "", "the aws-lambda-rie binary (default: .tools/bin/aws-lambda-rie, then PATH)")
	size := flag.Int("pool", 2, "emulators per function (each serves one invocation at a time)")
	logDir := flag.String("log-dir", "", "where each emulator's output goes, as <fn>-<n>.log (default: a temp dir)")
	secret := flag.String("origin-secret", "", "the origin secret (default: random; required in proxy mode, or -origin-secret-file)")
	secretFile := flag.String("origin-secret-file", "", "read the origin secret from this file (white space trimmed)")
	proxySpec := flag.String("proxy", "", "proxy mode: forward to deployed Function URLs, manifest=URL,blob=URL,catalog=URL, "+
		"instead of running emulators (-functions, -pool, -rie, -auth and -realm don't apply)")
	connect := flag.String("connect", "", "proxy mode: dial this host:port for every Function URL instead of resolving its host")
	authOn := flag.Bool("auth", true, "SKIFF_AUTH for the functions")
	setRealm := flag.Bool("realm", true, "set SKIFF_REALM to this front door's token URL (false: the functions derive it "+
		"from X-Forwarded-Host and -Proto, as in a stack without a custom domain)")
	grace := flag.Duration("grace", 10*time.Second, "how long shutdown waits for requests in flight")
	ingestURL := flag.String("ingest", "", "the ingest service (`skiff serve --ingest`) at http://HOST:PORT: upload routes go there, "+
		"as in a stack with Ingest on (default: none, uploads go to the blob function)")
	flag.Parse()
	var ingestTarget *url.URL
	if *ingestURL != "" {
		u, err := parseIngest(*ingestURL)
		if err != nil {
			return err
		}
		ingestTarget = u
	}
	if *secretFile != "" {
		if *secret != "" {
			return errors.New("set -origin-secret or -origin-secret-file, not both")
		}
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return err
		}
		if *secret = strings.TrimSpace(string(b)); *secret == "" {
			return fmt.Errorf("-origin-secret-file %s is empty", *secretFile)
		}
	}
	if *proxySpec != "" {
		if *fnDir != "" {
			return errors.New("-proxy and -functions are exclusive")
		}
		return runProxy(*proxySpec, *connect, *addr, *addrFile, *secret, ingestTarget, *grace)
	}
	if *connect != "" {
		return errors.New("-connect applies to -proxy only")
	}
	if *fnDir == "" {
		return errors.New("-functions DIR (or -proxy) is required")
	}
	if *size < 1 {
		return errors.New("-pool must be at least 1")
	}
	rieBin, err := findRIE(*rie)
	if err != nil {
		return err
	}
	if *secret == "" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		*secret = hex.EncodeToString(b)
	}
	if *logDir == "" {
		if *logDir, err = os.MkdirTemp("", "lambdafront-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(*logDir, 0o755); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// Listen first: the functions' realm names the address.
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer l.Close()
	hostport := l.Addr().String()

	extraEnv := map[string]string{
		deploy.EnvOriginSecret: *secret,
		deploy.EnvRealm:        "http://" + hostport + deploy.TokenPath,
		deploy.EnvAuth:         strconv.FormatBool(*authOn),
	}
	if !*setRealm {
		extraEnv[deploy.EnvRealm] = ""
	}
	start := time.Now()
	p, err := startPool(ctx, poolConfig{
		rie: rieBin, fnDir: *fnDir, size: *size, env: os.Environ(), logDir: *logDir, startWait: 15 * time.Second,
		extraEnv: extraEnv,
	})
	if err != nil {
		return err
	}
	defer p.stop()
	for _, in := range p.all {
		fmt.Printf("lambdafront: instance %s invoke=%s log=%s\n", in, in.invoke, in.logPath)
	}

	ready := fmt.Sprintf("%d emulators per function, started in %s; auth=%v, realm=%q; logs in %s",
		*size, time.Since(start).Round(time.Millisecond), *authOn, extraEnv[deploy.EnvRealm], *logDir)
	h := &front{inv: p, originSecret: *secret, log: log, now: time.Now}
	if ingestTarget != nil {
		h.ingest = newIngest(ingestTarget, *secret)
		ready += "; uploads to the ingest service at " + ingestTarget.Host
	}
	return serve(ctx, l, h, *addrFile, ready, *grace)
}

// runProxy is proxy mode: the front door of functions already deployed
// behind Function URLs (proxy.go).
func runProxy(spec, connect, addr, addrFile, secret string, ingest *url.URL, grace time.Duration) error {
	if secret == "" {
		return errors.New("proxy mode needs the deployed functions' origin secret: -origin-secret-file FILE (or -origin-secret)")
	}
	ups, err := parseUpstreams(spec)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	for _, fn := range functions {
		fmt.Printf("lambdafront: upstream %s url=%s\n", fn, ups[fn])
	}
	ready := "proxy to the deployed Function URLs"
	if connect != "" {
		ready += ", connecting to " + connect
	}
	h := &front{fwd: newForwarder(ups, connect), originSecret: secret, log: slog.New(slog.NewJSONHandler(os.Stderr, nil)), now: time.Now}
	if ingest != nil {
		h.ingest = newIngest(ingest, secret)
		ready += "; uploads to the ingest service at " + ingest.Host
	}
	return serve(ctx, l, h, addrFile, ready, grace)
}

// serve serves h on l until ctx ends, after writing the address to
// addrFile (when set) and printing the ready line.
func serve(ctx context.Context, l net.Listener, h *front, addrFile, detail string, grace time.Duration) error {
	hostport := l.Addr().String()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(hostport+"\n"), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("lambdafront: ready on http://%s (%s)\n", hostport, detail)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Println("lambdafront: stopping")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		h.log.Warn("shutdown", "error", err.Error())
	}
	return nil
}

// findRIE returns the emulator binary: flag, then .tools/bin under the
// working directory, then PATH.
func findRIE(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := filepath.Abs(filepath.Join(".tools", "bin", "aws-lambda-rie")); err == nil {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("aws-lambda-rie")
	if err != nil {
		return "", errors.New("aws-lambda-rie not found in .tools/bin or PATH (make tools installs it): set -rie")
	}
	return p, nil
}
