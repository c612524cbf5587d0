#!/usr/bin/env bash
# End-to-end test of the Lambda functions, locally: the three bootstraps under
# the Lambda Runtime Interface Emulator, behind tools/lambdafront (the stand-in
# for CloudFront and the Function URLs), on the AWS stand-ins.
#
#   scripts/e2e-lambda.sh
#
# Steps (everything it starts is stopped at the end, pass or fail):
#   1. tools: scripts/tools.sh (conformance, crane, regctl, oras, skopeo,
#      cosign, distribution's registry for test/integration) and
#      aws-lambda-rie (pinned below) into .tools/bin;
#   2. the deployable arm64 zips (scripts/functions.sh: build/functions/*.zip)
#      for their sizes, and native bootstraps for the emulator;
#   3. the stand-ins (scripts/with-standins.sh, unless AWS_ENDPOINT_URL_S3 and
#      AWS_ENDPOINT_URL_DYNAMODB are set already), a fresh bucket and table and
#      the shared token key (tools/awsinit), an admin user
#      (`skiff user add --admin --table`);
#   4. lambdafront with E2E_POOL (default 2) emulators per function, the
#      functions configured as the stack configures them (auth on, 4 MiB body
#      cap, 1 MiB redirect threshold, origin secret) unless SKIFF_* says
#      otherwise;
#   5-7. scripts/lambda-checks.sh HOST:PORT, the checks shared with the
#      LocalStack run (localstack/test.sh): through the front door, the body
#      limits answer 413 (Lambda's 6 MB payload at the front door, the
#      function's 4 MiB cap with advice to chunk); the OCI conformance suite
#      (scripts/conformance.sh HOST:PORT, label "lambda"): every optional
#      test on but the blob Docker-Content-Digest check (blob GETs of
#      >= 1 MiB are 307s to S3, which can't send that header), sha512 data,
#      with the admin's credentials, zero failures required; real clients:
#      crane, regctl (chunked), oras and skopeo push, copy and pull, and
#      pushes that must exceed the limits are checked to fail with 413;
#      then the Go integration tests that apply to an external registry
#      (scripts/integration-external.sh: test/integration with
#      SKIFF_IT_REGISTRY at the front door, as the admin; real clients
#      crane, regctl, skopeo, oras and cosign); then, here, a direct call to
#      a function without the origin secret must be refused;
#   8. a report: zip sizes, each instance's cold-start init time (the
#      functions' "init" line and the emulator's REPORT), conformance counts,
#      client results, the integration tests' verdicts and durations. Also
#      in results/e2e-lambda/summary.txt.
#
# Env: E2E_POOL (emulators per function, default 2), E2E_SKIP_TOOLS=1 (don't
# run scripts/tools.sh), E2E_REALM=forwarded (no SKIFF_REALM: the functions
# derive the token realm from X-Forwarded-Host, as in a stack without a custom
# domain), SKIFF_AUTH=false (no auth: conformance without credentials), any
# SKIFF_* or LOG_LEVEL for the functions, OCI_* for the suite.
# Results and logs: results/e2e-lambda/ (lambdafront, each emulator, each
# client step) and results/conformance/lambda/.
# Make target: `make e2e-lambda`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'e2e-lambda: %s\n' "$*" >&2; }

# The stand-ins first: this script runs again under with-standins.sh, which
# stops them however it ends.
if [[ -z "${AWS_ENDPOINT_URL_S3:-}" || -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
	exec "$root/scripts/with-standins.sh" "$0" "$@"
fi

rie_pkg="github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"
tools_dir="${TOOLS_DIR:-$root/.tools}"
bin_dir="$tools_dir/bin"
out="$root/results/e2e-lambda"
pool="${E2E_POOL:-2}"
export PATH="$bin_dir:$PATH"

rm -rf "$out"
mkdir -p "$out/functions" "$out/clients"
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-e2e-lambda.XXXXXX")"
front_pid=""

cleanup() {
	if [[ -n "$front_pid" ]] && kill -0 "$front_pid" 2>/dev/null; then
		log "stopping lambdafront (pid $front_pid) and its emulators"
		kill -TERM "$front_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$front_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$front_pid" 2>/dev/null || true
		wait "$front_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=()
fail() {
	failures+=("$*")
	log "FAIL: $*"
}

# ---- 1. tools
if [[ "${E2E_SKIP_TOOLS:-}" != 1 ]]; then
	scripts/tools.sh
fi
stamp="$tools_dir/stamps/aws-lambda-rie"
if [[ ! -x "$bin_dir/aws-lambda-rie" || ! -f "$stamp" || "$(cat "$stamp")" != "$rie_pkg" ]]; then
	log "installing aws-lambda-rie ($rie_pkg)"
	mkdir -p "$bin_dir" "$(dirname "$stamp")"
	GOBIN="$bin_dir" GOFLAGS='' go install "$rie_pkg"
	printf '%s\n' "$rie_pkg" >"$stamp"
fi

# ---- 2. builds
log "building the arm64 deployment zips (scripts/functions.sh)"
scripts/functions.sh | tee "$out/zips.txt"
log "building native bootstraps for the emulator"
scripts/functions.sh --arch amd64 --out "$work/functions" >"$out/native.txt"
mkdir -p "$work/bin"
GOFLAGS='' go build -o "$work/bin/lambdafront" ./tools/lambdafront
GOFLAGS='' go build -o "$work/bin/awsinit" ./tools/awsinit
GOFLAGS='' go build -o "$work/bin/skiff" ./cmd/skiff

# ---- 3. resources and a user
suffix="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export SKIFF_S3_BUCKET="skiff-e2e-$suffix" SKIFF_DYNAMODB_TABLE="skiff-e2e-$suffix"
export SKIFF_AUTH_KEY_FILE="$work/token.key"
export LOG_LEVEL="${LOG_LEVEL:-info}"
auth="${SKIFF_AUTH:-true}"
"$work/bin/awsinit" -bucket "$SKIFF_S3_BUCKET" -table "$SKIFF_DYNAMODB_TABLE" -key-file "$SKIFF_AUTH_KEY_FILE"
user=e2e-admin
password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$password" | "$work/bin/skiff" user add "$user" --admin --password-stdin --table "$SKIFF_DYNAMODB_TABLE" >/dev/null
log "user $user (admin) added to table $SKIFF_DYNAMODB_TABLE"

# ---- 4. the front door
realm=true
if [[ "${E2E_REALM:-}" == forwarded ]]; then realm=false; fi
"$work/bin/lambdafront" -functions "$work/functions" -pool "$pool" -log-dir "$out/functions" \
	-addr-file "$work/addr" -auth="$auth" -realm="$realm" -rie "$bin_dir/aws-lambda-rie" \
	>"$out/lambdafront.out" 2>"$out/lambdafront.log" &
front_pid=$!
for _ in $(seq 1 300); do
	[[ -s "$work/addr" ]] && break
	if ! kill -0 "$front_pid" 2>/dev/null; then
		log "ERROR: lambdafront exited at start:"
		cat "$out/lambdafront.out" "$out/lambdafront.log" >&2
		exit 1
	fi
	sleep 0.1
done
[[ -s "$work/addr" ]] || { log "ERROR: lambdafront not ready after 30s"; cat "$out/lambdafront.log" >&2; exit 1; }
addr="$(cat "$work/addr")"
grep ready "$out/lambdafront.out" >&2

# ---- 5-7. the checks shared with the LocalStack run: the front door and
# its body limits, conformance, real clients, the integration tests
# (results/e2e-lambda/clients.txt, integration.txt, failures.txt).
checks_user=""
if [[ "$auth" == true ]]; then checks_user="$user"; fi
checks_rc=0
LAMBDA_CHECKS_USER="$checks_user" LAMBDA_CHECKS_PASSWORD="$password" scripts/lambda-checks.sh "$addr" "$out" lambda || checks_rc=$?
if [[ -s "$out/failures.txt" ]]; then
	while IFS= read -r line; do
		if [[ -n "$line" ]]; then failures+=("$line"); fi
	done <"$out/failures.txt"
elif [[ "$checks_rc" != 0 ]]; then
	fail "scripts/lambda-checks.sh exited $checks_rc without a list of failures"
fi

# A direct call to a function (not through CloudFront) lacks the origin
# secret. (After the checks: the front door's first request of each
# instance stays its cold start, for the report.)
invoke="$(sed -n 's/^lambdafront: instance catalog\/0 invoke=\([^ ]*\) .*/\1/p' "$out/lambdafront.out")"
direct='{"version":"2.0","rawPath":"/v2/","rawQueryString":"","headers":{"host":"x.lambda-url.us-east-1.on.aws"},"requestContext":{"http":{"method":"GET","path":"/v2/","sourceIp":"192.0.2.1"}},"isBase64Encoded":false}'
resp="$(curl -s -X POST --data-binary "$direct" "$invoke" || true)"
if [[ "$resp" == *'"statusCode":403'* && "$resp" == *DENIED* ]]; then
	log "ok: a direct call without the origin secret is refused (403 DENIED)"
else
	fail "direct call without the origin secret: $resp"
fi

# ---- 8. report
{
	echo "== Lambda functions: deployment zips (linux/arm64, provided.al2023)"
	cat "$out/zips.txt"
	echo
	echo "== cold starts under the emulator (the first invocation of each instance)"
	printf '%-12s %8s %8s %12s %17s\n' instance init_ms main_ms rie_init_ms first_request_ms
	for f in "$out"/functions/*.log; do
		inst="$(basename "$f" .log)"
		line="$(grep -m1 '"msg":"init"' "$f" || true)"
		[[ -n "$line" ]] || { printf '%-12s %8s\n' "$inst" "(never invoked)"; continue; }
		init_ms="$(sed -n 's/.*"init_ms":\([0-9]*\).*/\1/p' <<<"$line")"
		main_ms="$(sed -n 's/.*"main_ms":\([0-9]*\).*/\1/p' <<<"$line")"
		rie_ms="$(sed -n 's/.*INIT REPORT(durationMs: \([0-9]*\.[0-9]\)[0-9]*).*/\1/p' "$f" | sed -n 1p)"
		first_ms="$(grep -m1 "\"instance\":\"${inst%-*}/${inst##*-}\"" "$out/lambdafront.log" | sed -n 's/.*"dur_ms":\([0-9]*\).*/\1/p')"
		printf '%-12s %8s %8s %12s %17s\n' "$inst" "${init_ms:-?}" "${main_ms:-?}" "${rie_ms:-?}" "${first_ms:-?}"
	done
	echo "init_ms: the function's own measure, process start to ready (10 ms resolution); main_ms: main() to ready;"
	echo "rie_init_ms: the emulator's INIT REPORT (runtime start to its first /next); first_request_ms: the front"
	echo "door's duration of the instance's first request, init included. Local stand-ins, no Secrets Manager:"
	echo "a deployed cold start adds the sandbox, the zip, three GetSecretValue calls and real network round trips."
	echo
	echo "(the functions' body limit: ${SKIFF_MAX_BODY:-4194304} bytes)"
	cat "$out/checks-summary.txt" 2>/dev/null || echo "(no report from scripts/lambda-checks.sh: see its output)"
	if [[ ${#failures[@]} -gt 0 ]]; then
		echo
		echo "== FAILURES"
		printf '  %s\n' "${failures[@]}"
	fi
} | tee "$out/summary.txt"

if [[ ${#failures[@]} -gt 0 ]]; then
	errors="$(grep -h -E '"level":"(ERROR|WARN)"|panic' "$out"/functions/*.log | head -n 40 || true)"
	if [[ -n "$errors" ]]; then
		log "function log lines with errors or warnings (first 40):"
		printf '%s\n' "$errors" >&2
	fi
	log "FAILED (${#failures[@]}); logs in $out"
	exit 1
fi
log "passed; logs in $out"
