// Package integration drives a real `skiff serve` process with real registry
// clients (skopeo, regctl, crane, oras, cosign) and with raw net/http, and
// checks that content survives every push, copy, pull and restart byte for
// byte. TestPartialMirror (mirror_test.go) also starts CNCF distribution in
// memory (the `registry` tool) as the upstream of a partial mirror.
//
// The tests live in _test.go files; run them with
//
//	go test ./test/integration/...
//
// TestMain builds ./cmd/skiff once (with -race when the tests run with -race,
// so the server is race-checked under real client traffic). Every test starts
// its own server on a free loopback port with a fresh data directory (or
// bucket and table) and prints the server's log when it fails.
//
// TestClientLogin (auth_test.go) starts `skiff serve --auth` through
// startAuthRegistry, which creates users with `skiff user add ...
// --password-stdin` and `skiff user grant` (--data before the server starts;
// --table on aws, once the server has created the table) and gives the
// server a random --token-key-file, with which the harness signs the tokens
// of its own checks. Each client logs in with its own login command, the
// password on stdin, in its isolated HOME.
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
//	SKIFF_IT_BACKEND=aws  start skiff with --backend aws --create-resources
//	    and a fresh S3 bucket and DynamoDB table per server (kept across its
//	    restarts), on the stand-ins named by AWS_ENDPOINT_URL_S3 and
//	    AWS_ENDPOINT_URL_DYNAMODB; without both the run fails at once rather
//	    than reach real AWS. `make integration-aws` (part of `make test`)
//	    runs it under scripts/with-standins.sh. Default: local.
//	SKIFF_IT_WAIT_CLAIM=1  on aws, TestRestartDurability accepts a 416
//	    "another request is writing" on the resume right after the kill (the
//	    killed request's claim lasts its one-minute lease); with this set it
//	    then waits for the lease and finishes the upload (about a minute)
package integration
