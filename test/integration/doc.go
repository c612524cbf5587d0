// Package integration drives a real `skiff serve` process with real registry
// clients (skopeo, regctl, crane, oras, podman, cosign) and with raw
// net/http, and checks that content survives every push, copy, pull and
// restart byte for byte. TestPartialMirror (mirror_test.go) also starts CNCF
// distribution in memory (the `registry` tool) as the upstream of a partial
// mirror.
//
// podman is the one client whose pushes change digests: it pushes from its
// local storage, compressing the layers again (or mounting a compressed
// copy its blob info cache knows in the same registry). Its checks
// (podman_test.go) are of the content: the same config digest (podman's
// image ID) and the same uncompressed layers (diffIDs) in a valid OCI or
// Docker schema2 manifest whose blobs are all there, and `podman image
// inspect` after a pull. TestPodmanRoundTrip takes the image into podman's
// storage from another repository (the push then mounts) and from an OCI
// layout (it compresses again and uploads), pushes it and pulls it back
// into a fresh storage; TestClientLogin has a podman subtest. Every podman
// command runs with --root in the test's temp dir, --runroot and --tmpdir
// in a short temp dir of its own (podman refuses a runroot over 50
// characters), --storage-driver vfs, containers.conf and storage.conf of
// its own (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), and pull and push
// with --tls-verify=false and an insecureAcceptAnything --signature-policy;
// credentials in the toolbox's $REGISTRY_AUTH_FILE. Only its blob info
// cache, /var/lib/containers/cache as root (shared with skopeo), can't be
// moved.
//
// The tests live in _test.go files; run them with
//
//	go test ./test/integration/...
//
// TestMain builds ./cmd/skiff once (with -race when the tests run with -race,
// so the server is race-checked under real client traffic). Every test starts
// its own server on a free loopback port with a fresh data directory (or
// bucket and table) and prints the server's log when it fails, unless
// SKIFF_IT_REGISTRY names a registry to test instead (below).
//
// TestClientLogin (auth_test.go) starts `skiff serve --auth` through
// startAuthRegistry, which creates users with `skiff user add ...
// --password-stdin` and `skiff user grant` (--data before the server starts;
// --table on aws, once the server has created the table) and gives the
// server a random --token-key-file; the harness's own checks get their
// tokens from the token endpoint, as clients do. Each client logs in with its own login command, the
// password on stdin, in its isolated HOME (podman: `podman login
// --tls-verify=false -u USER --password-stdin HOST`, into its
// $REGISTRY_AUTH_FILE; its pusher pushes first, so the refused pushes are
// checked to leave none of the digests podman pushes either).
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
//	    runs it under tools/standins. Default: local.
//	SKIFF_IT_WAIT_CLAIM=1  on aws, TestRestartDurability accepts a 416
//	    "another request is writing" on the resume right after the kill (the
//	    killed request's claim lasts its one-minute lease); with this set it
//	    then waits for the lease and finishes the upload (about a minute)
//
// An external registry (the Lambda functions behind their front door):
//
//	SKIFF_IT_REGISTRY=host:port  test the registry already running there
//	    (plain HTTP) instead of starting skiff: startRegistry and
//	    startAuthRegistry start no process (skiff is still built, for its
//	    CLI), and each test puts its repositories, policies and grants under
//	    a prefix of its own, it-<random>/ (registry.repo), so runs and tests
//	    never meet. Excludes SKIFF_IT_BACKEND and SKIFF_IT_DISTRIBUTION.
//	SKIFF_IT_USER, SKIFF_IT_PASSWORD  an admin of that registry: the
//	    harness then expects it to authenticate and uses that admin as
//	    startAuthRegistry's: its own requests carry tokens from the
//	    registry's token endpoint (the realm of a 401's challenge, with
//	    Basic credentials, cached per scope), the clients get its
//	    credentials in their isolated HOME ($DOCKER_CONFIG/config.json,
//	    $REGISTRY_AUTH_FILE), and TestClientLogin's users are created and
//	    deleted with `skiff user ... --registry` (the operator API), named
//	    it-<random>-<name>. Without them the registry must let anyone in.
//
// Against an external registry what needs a process of the harness's own
// is handled explicitly, never skipped (a skip would read as a pass):
//
//   - TestRestartDurability (kill and restart) calls requireOwnServer and
//     fails if selected; a `skiff serve` flag the test asks for fails the
//     test too, except --operator-api, which is checked (the admin lists
//     the policies) rather than assumed. A missing client tool fails.
//   - Log inspections become checks over HTTP: a refused login-test push
//     (expectRefused) by asking the registry, as the refused caller, to
//     start an upload there (401, 401 insufficient_scope for the user's
//     token, 403 for Basic); a refused copy into a strict repository
//     (expectBlobUnknownRefusal) by the admin's PUT of the same index
//     (400 MANIFEST_BLOB_UNKNOWN); cosign's use of the referrers API by a
//     recording proxy (on every registry).
//   - TestPartialMirror sets its policies with `skiff policy set
//     --registry` as the admin, checks them with GET /v2/_skiff/policies/
//     and waits out the policy cache TTL (policy.DefaultTTL) that other
//     processes (function instances) read them through.
//   - The Lambda functions refuse bodies over 4 MiB: crane and skopeo, which
//     push a layer in one PATCH, get a 3 MiB layer in TestChunkedPush
//     (12 MiB on a server of the harness's own); regctl still sends 12 MiB
//     in chunks; every other test's layers are under 1 MiB (podman, which
//     also sends a layer in one PATCH, included), but TestWholeLayerClients':
//     64 MiB (SKIFF_IT_LAYER_MIB), taken whole by a server of the harness's
//     own or a stack with the ingest service, and refused with advice behind
//     a pure-Lambda front door (SKIFF_IT_BODY_CAP, large_test.go).
//
// test/lambda (`make e2e-lambda`, and localstack/test.sh through
// scripts/lambda-checks.sh) runs every test against the stack's front door
// with SKIFF_REQUIRE_TOOLS=1: a test that can't apply to an external
// registry skips through notApplicable, which names it in
// SKIFF_IT_NOT_APPLICABLE, and any other skip fails the run.
package integration
