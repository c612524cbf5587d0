#!/usr/bin/env bash
# End-to-end test of the Lambda functions, locally: the three bootstraps under
# the Lambda Runtime Interface Emulator, behind tools/lambdafront (the stand-in
# for CloudFront and the Function URLs), on the AWS stand-ins.
#
#   scripts/e2e-lambda.sh
#
# Steps (everything it starts is stopped at the end, pass or fail):
#   1. tools: scripts/tools.sh (conformance, crane, regctl, oras, skopeo,
#      cosign, distribution's registry for test/integration);
#   2. the deployable arm64 zips (scripts/functions.sh: build/functions/*.zip)
#      for their sizes;
#   3-7. for each mode of E2E_MODES (default "ingest lambda"): the stack
#      (scripts/stack.sh, `make stack`: the stand-ins, a fresh bucket, table
#      and admin, the functions under the emulator configured as the stack
#      configures them, the front door, and in mode ingest the ingest service
#      taking every upload route), then scripts/lambda-checks.sh through its
#      front door, the checks shared with the LocalStack run: the body limits
#      (mode lambda: the front door's 413 SIZE_INVALID with advice, the
#      function's cap on a streamed body, Lambda's 6 MB payload; mode ingest:
#      5 MiB in one PATCH), the OCI conformance suite (label lambda-MODE),
#      real clients (whole-layer pushes refused with advice in mode lambda,
#      taken in mode ingest), the Go integration tests that apply to an
#      external registry (scripts/integration-external.sh, with
#      SKIFF_IT_BODY_CAP in mode lambda); then a direct call to a function,
#      and to the ingest service, without the origin secret must be refused;
#   8. a report per mode: cold starts, conformance counts, client results,
#      the integration tests' verdicts. Also in results/e2e-lambda/summary.txt.
#
# Env: E2E_MODES, E2E_POOL (emulators per function, default 2),
# E2E_SKIP_TOOLS=1 (don't run scripts/tools.sh), E2E_REALM=forwarded (no
# SKIFF_REALM: the functions derive the token realm from X-Forwarded-Host, as
# in a stack without a custom domain), SKIFF_AUTH=false (no auth: conformance
# without credentials), LOG_LEVEL, OCI_* for the suite.
# Results and logs: results/e2e-lambda/MODE/ (the stack's logs, each client
# step) and results/conformance/lambda-MODE/.
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

tools_dir="${TOOLS_DIR:-$root/.tools}"
bin_dir="$tools_dir/bin"
out="$root/results/e2e-lambda"
pool="${E2E_POOL:-2}"
export PATH="$bin_dir:$PATH"

modes="${E2E_MODES:-ingest lambda}"
rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-e2e-lambda.XXXXXX")"
mkdir -p "$work/bin"

cleanup() {
	if declare -F stop_stack >/dev/null; then stop_stack; fi
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

# ---- 2. builds
log "building the arm64 deployment zips (scripts/functions.sh)"
scripts/functions.sh | tee "$out/zips.txt"
GOFLAGS='' go build -o "$work/bin/lambdafront" ./tools/lambdafront

# ---- 3-7. the stack (scripts/stack.sh), once per mode, and the checks
# shared with the LocalStack run through its front door.
auth="${SKIFF_AUTH:-true}"
stack_pid=""
stop_stack() {
	if [[ -n "$stack_pid" ]] && kill -0 "$stack_pid" 2>/dev/null; then
		kill -TERM "$stack_pid" 2>/dev/null || true
		for _ in $(seq 1 150); do
			kill -0 "$stack_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$stack_pid" 2>/dev/null || true
	fi
	wait "$stack_pid" 2>/dev/null || true
	stack_pid=""
}
built=""
for mode in $modes; do
	case "$mode" in
	ingest) ingest=1 ;;
	lambda) ingest=0 ;;
	*) log "E2E_MODES: unknown mode $mode (want ingest, lambda)"; exit 2 ;;
	esac
	mout="$out/$mode"
	mkdir -p "$mout"
	log "mode $mode: starting the stack (scripts/stack.sh, STACK_INGEST=$ingest)"
	STACK_INGEST="$ingest" STACK_POOL="$pool" STACK_REALM="${E2E_REALM:-}" STACK_LOGS="$mout" STACK_BIN="$work/stack" STACK_SKIP_BUILD="$built" \
		SKIFF_STACK_ENV="$work/$mode.env" SKIFF_AUTH="$auth" scripts/stack.sh >"$mout/stack.out" 2>&1 &
	stack_pid=$!
	for _ in $(seq 1 1200); do
		[[ -s "$work/$mode.env" ]] && break
		if ! kill -0 "$stack_pid" 2>/dev/null; then
			log "ERROR: scripts/stack.sh exited at start:"
			cat "$mout/stack.out" >&2
			exit 1
		fi
		sleep 0.1
	done
	[[ -s "$work/$mode.env" ]] || { log "ERROR: the stack was not ready after 120 s"; cat "$mout/stack.out" >&2; exit 1; }
	built=1
	# shellcheck disable=SC1090
	. "$work/$mode.env"
	checks_user=""
	if [[ "$auth" == true ]]; then checks_user="$ADMIN_USER"; fi
	checks_rc=0
	LAMBDA_CHECKS_INGEST="$ingest" LAMBDA_CHECKS_USER="$checks_user" LAMBDA_CHECKS_PASSWORD="$ADMIN_PASSWORD" \
		scripts/lambda-checks.sh "$REGISTRY" "$mout" "lambda-$mode" || checks_rc=$?
	if [[ -s "$mout/failures.txt" ]]; then
		while IFS= read -r line; do
			if [[ -n "$line" ]]; then failures+=("[$mode] $line"); fi
		done <"$mout/failures.txt"
	elif [[ "$checks_rc" != 0 ]]; then
		fail "[$mode] scripts/lambda-checks.sh exited $checks_rc without a list of failures"
	fi

	# A direct call to a function (not through CloudFront) lacks the origin
	# secret. (After the checks: the front door's first request of each
	# instance stays its cold start, for the report.)
	invoke="$(sed -n 's/^lambdafront: instance catalog\/0 invoke=\([^ ]*\) .*/\1/p' "$mout/lambdafront.out")"
	direct='{"version":"2.0","rawPath":"/v2/","rawQueryString":"","headers":{"host":"x.lambda-url.us-east-1.on.aws"},"requestContext":{"http":{"method":"GET","path":"/v2/","sourceIp":"192.0.2.1"}},"isBase64Encoded":false}'
	resp="$(curl -s -X POST --data-binary "$direct" "$invoke" || true)"
	if [[ "$resp" == *'"statusCode":403'* && "$resp" == *DENIED* ]]; then
		log "ok: a direct call without the origin secret is refused (403 DENIED)"
	else
		fail "[$mode] direct call without the origin secret: $resp"
	fi
	if [[ "$ingest" == 1 ]]; then
		# And so is one to the ingest service.
		st="$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$INGEST/v2/e2e/direct/blobs/uploads/" || true)"
		if [[ "$st" == 403 ]]; then
			log "ok: a direct call to the ingest service without the origin secret is refused (403)"
		else
			fail "[$mode] direct call to the ingest service: $st, want 403"
		fi
	fi
	stop_stack
done

# ---- 8. report
{
	echo "== Lambda functions: deployment zips (linux/arm64, provided.al2023)"
	cat "$out/zips.txt"
	for mode in $modes; do
		mout="$out/$mode"
		echo
		if [[ "$mode" == ingest ]]; then
			echo "######## mode ingest: uploads to the ingest service (skiff serve --ingest), everything else to the functions"
		else
			echo "######## mode lambda: pure Lambda, uploads to the blob function (4 MiB per request)"
		fi
		echo "== cold starts under the emulator (the first invocation of each instance)"
		printf '%-12s %8s %8s %12s %17s\n' instance init_ms main_ms rie_init_ms first_request_ms
		for f in "$mout"/functions/*.log; do
			inst="$(basename "$f" .log)"
			line="$(grep -m1 '"msg":"init"' "$f" || true)"
			[[ -n "$line" ]] || { printf '%-12s %8s\n' "$inst" "(never invoked)"; continue; }
			init_ms="$(sed -n 's/.*"init_ms":\([0-9]*\).*/\1/p' <<<"$line")"
			main_ms="$(sed -n 's/.*"main_ms":\([0-9]*\).*/\1/p' <<<"$line")"
			rie_ms="$(sed -n 's/.*INIT REPORT(durationMs: \([0-9]*\.[0-9]\)[0-9]*).*/\1/p' "$f" | sed -n 1p)"
			first_ms="$(grep -m1 "\"instance\":\"${inst%-*}/${inst##*-}\"" "$mout/lambdafront.log" | sed -n 's/.*"dur_ms":\([0-9]*\).*/\1/p')"
			printf '%-12s %8s %8s %12s %17s\n' "$inst" "${init_ms:-?}" "${main_ms:-?}" "${rie_ms:-?}" "${first_ms:-?}"
		done
		echo
		cat "$mout/checks-summary.txt" 2>/dev/null || echo "(no report from scripts/lambda-checks.sh: see its output)"
	done
	echo
	echo "init_ms: the function's own measure, process start to ready (10 ms resolution); main_ms: main() to ready;"
	echo "rie_init_ms: the emulator's INIT REPORT (runtime start to its first /next); first_request_ms: the front"
	echo "door's duration of the instance's first request, init included. Local stand-ins, no Secrets Manager:"
	echo "a deployed cold start adds the sandbox, the zip, three GetSecretValue calls and real network round trips."
	if [[ ${#failures[@]} -gt 0 ]]; then
		echo
		echo "== FAILURES"
		printf '  %s\n' "${failures[@]}"
	fi
} | tee "$out/summary.txt"

if [[ ${#failures[@]} -gt 0 ]]; then
	errors="$(grep -h -E '"level":"(ERROR|WARN)"|panic' "$out"/*/functions/*.log "$out"/*/ingest.log 2>/dev/null | head -n 40 || true)"
	if [[ -n "$errors" ]]; then
		log "function log lines with errors or warnings (first 40):"
		printf '%s\n' "$errors" >&2
	fi
	log "FAILED (${#failures[@]}); logs in $out"
	exit 1
fi
log "passed; logs in $out"
