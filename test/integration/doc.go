// Package integration drives a real `skiff serve` process with real registry
// clients (skopeo, regctl, crane, oras) and with raw net/http, and checks that
// content survives every push, copy, pull and restart byte for byte.
//
// The tests live in _test.go files; run them with
//
//	go test ./test/integration/...
//
// TestMain builds ./cmd/skiff once (with -race when the tests run with -race,
// so the server is race-checked under real client traffic). Every test starts
// its own server on a free loopback port with a fresh data directory and
// prints the server's log when it fails.
//
// Client tools are looked up in <repo>/.tools/bin (see scripts/tools.sh), then
// in PATH. A missing tool skips the tests that need it, loudly, unless
// SKIFF_REQUIRE_TOOLS=1 (set by `make test`), which turns the skip into a
// failure: in CI a skipped integration test counts as a failure.
//
// Other knobs:
//
//	SKIFF_IT_DISTRIBUTION=/path/to/registry  run the same tests against CNCF
//	    distribution (filesystem storage) instead of skiff, to check the harness
//	SKIFF_IT_SHOW_LOG=1  print the server log even when a test passes
package integration
