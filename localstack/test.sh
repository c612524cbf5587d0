#!/usr/bin/env bash
# End-to-end test of Skiff's stack deployed into LocalStack: the real CDK
# stack, the real arm64 zips in LocalStack's Lambda (in containers, behind
# Function URLs), S3, DynamoDB and Secrets Manager, with tools/lambdafront
# -proxy standing in for CloudFront, then the same checks as
# `make e2e-lambda` (test/lambda) makes through its front door
# (scripts/lambda-checks.sh).
# Needs a Docker engine: CI has none and runs `make e2e-lambda` instead.
#
#   localstack/test.sh          (make localstack-test)
#
# Steps (what it starts is stopped at the end, pass or fail):
#   1. preflight: docker (engine and Compose v2), go, node, npm, curl;
#      port 4566 free; the engine can run the functions' architecture;
#      localhost.localstack.cloud resolves to 127.0.0.1; the client tools
#      (scripts/tools.sh);
#   2. a fresh LocalStack (localstack/compose.yaml; `down -v` first), waited
#      for until its services are available;
#   3. localstack/deploy.sh: the zips, cdklocal bootstrap and deploy, the
#      stack's bucket, table, Function URLs and origin secret;
#   4. an admin user in the deployed table (`skiff user add --admin
#      --table`, DynamoDB at LocalStack);
#   5. each function called directly at its Function URL, without the origin
#      secret: must answer 403 DENIED (also each function's cold start,
#      retried while LocalStack starts its container);
#   6. lambdafront -proxy on a free loopback port: CloudFront's routing and
#      headers in front of the three Function URLs;
#   7. scripts/lambda-checks.sh through it, label "localstack": every test
#      of test/integration, the OCI conformance suite first, the body limits
#      and the real clients among them, as in `make e2e-lambda`;
#   8. a report: results/localstack/summary.txt. Logs: results/localstack/
#      (lambdafront, LocalStack's own log, results/e2e-lambda/localstack/),
#      results/conformance/localstack/.
#
# Env: FUNCTION_ARCH=amd64 (amd64 bootstraps, run natively by an amd64
# engine: see README.md), LOCALSTACK_IMAGE, LOCALSTACK_AUTH_TOKEN,
# LOCALSTACK_SERVICES (compose.yaml), LOCALSTACK_KEEP=1 (leave LocalStack
# running after the test), LOCALSTACK_SKIP_TOOLS=1 (don't run
# scripts/tools.sh), LOCALSTACK_SKIP_ARCH_CHECK=1,
# LOCALSTACK_COLD_START_TIMEOUT (seconds to wait for the functions' first
# answers, default 300).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=localstack/env.sh
source "$root/localstack/env.sh"

log() { printf 'localstack/test.sh: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

out="$root/results/localstack"
tools_bin="${TOOLS_DIR:-$root/.tools}/bin"
export PATH="$tools_bin:$PATH"
work=""
front_pid=""
started=""

cleanup() {
	local rc=$?
	if [[ -n "$front_pid" ]] && kill -0 "$front_pid" 2>/dev/null; then
		log "stopping lambdafront (pid $front_pid)"
		kill -TERM "$front_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$front_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$front_pid" 2>/dev/null || true
		wait "$front_pid" 2>/dev/null || true
	fi
	if [[ -n "$started" ]]; then
		compose logs --no-color >"$out/localstack.log" 2>&1 || true
		if [[ "${LOCALSTACK_KEEP:-}" == 1 ]]; then
			log "LocalStack left running (LOCALSTACK_KEEP=1): docker compose -f localstack/compose.yaml down -v to stop it"
		else
			log "stopping LocalStack"
			compose down -v --remove-orphans >/dev/null 2>&1 || true
			# Lambda containers LocalStack failed to remove (it removes its own
			# on a clean stop). Named after its container: only ours.
			while IFS= read -r id; do
				docker rm -f "$id" >/dev/null 2>&1 || true
			done < <(docker ps -aq --filter "name=^${ls_container}-lambda-" 2>/dev/null || true)
		fi
	fi
	[[ -n "$work" ]] && rm -rf "$work"
	return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=()
fail() {
	failures+=("$*")
	log "FAIL: $*"
}

# ---- 1. preflight
if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
	die "bash 4.4 or later is needed (this is $BASH_VERSION; on macOS: brew install bash coreutils)"
fi
need docker go node npm curl || die "install the tools above"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info): LocalStack runs in Docker, and runs Lambda functions in containers of its own"
compose version >/dev/null || die "Docker Compose v2 is needed"
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$ls_port/"; then
	if [[ -z "$(docker ps -q --filter "name=^${ls_container}\$")" ]]; then
		die "something already listens on 127.0.0.1:$ls_port (another LocalStack?): stop it first"
	fi
	log "replacing the $ls_container container left from an earlier run"
fi
check_function_arch || die "the Docker engine can't run FUNCTION_ARCH=$function_arch functions"
check_dns || die "the clients follow presigned S3 URLs to $ls_domain:$ls_port"
if [[ "${LOCALSTACK_SKIP_TOOLS:-${E2E_SKIP_TOOLS:-}}" != 1 ]]; then
	scripts/tools.sh
fi
need conformance crane regctl oras skopeo cosign registry || die "the client tools come from scripts/tools.sh (skopeo from apt)"

rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-localstack.XXXXXX")"

# ---- 2. LocalStack, fresh
if [[ "$function_arch" == amd64 ]]; then
	# The stack declares arm64; run the amd64 bootstraps natively.
	export LAMBDA_IGNORE_ARCHITECTURE=1
fi
log "starting LocalStack (${LOCALSTACK_IMAGE:-localstack/localstack:4.14.0})"
compose down -v --remove-orphans >/dev/null 2>&1 || true
started=1
compose up -d
mkdir -p "$ls_build/bin"
GOFLAGS='' go build -o "$ls_build/bin/lsinfo" ./localstack/lsinfo
"$ls_build/bin/lsinfo" health -endpoint "$ls_direct" \
	-services "${LOCALSTACK_SERVICES:-s3,dynamodb,lambda,iam,sts,secretsmanager,cloudformation,logs,cloudwatch,ssm,kms}" \
	-timeout 3m | tee "$out/localstack-version.txt" ||
	die "LocalStack did not come up: $(compose logs --no-color --tail 30 2>&1)"

# ---- 3. the stack
localstack/deploy.sh 2>&1 | tee "$out/deploy.log"
# shellcheck source=/dev/null
source "$ls_build/stack.env"

# ---- 4. an admin user, written straight to the deployed table
GOFLAGS='' go build -o "$work/skiff" ./cmd/skiff
GOFLAGS='' go build -o "$work/lambdafront" ./tools/lambdafront
user=e2e-admin
password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$password" | AWS_ENDPOINT_URL_DYNAMODB="$ls_direct" \
	"$work/skiff" user add "$user" --admin --password-stdin --table "$SKIFF_DYNAMODB_TABLE" >/dev/null
log "user $user (admin) added to table $SKIFF_DYNAMODB_TABLE"

# ---- 5. direct calls: refused without the origin secret (and cold starts)
# direct_call FN URL PATH: the function at its Function URL, as anyone on
# the network could call it, without CloudFront's header.
direct=()
# One deadline for the three: a function that can't start (502 until then)
# costs the wait once, not three times.
deadline=$((SECONDS + ${LOCALSTACK_COLD_START_TIMEOUT:-300}))
direct_call() {
	local fn="$1" url="${2%/}" path="$3" st=""
	while :; do
		# --connect-to: the URL's host is a name under localhost.localstack.cloud;
		# go to the gateway whatever DNS says.
		st="$(curl -s -o "$work/body" -w '%{http_code}' --max-time 120 --connect-to "::127.0.0.1:$ls_port" "$url$path" || true)"
		# 502 / 5xx / nothing: the container is still starting (or failing).
		if [[ "$st" != 000 && "$st" != 5* ]] || ((SECONDS >= deadline)); then
			break
		fi
		sleep 5
	done
	if [[ "$st" == 403 ]] && grep -q DENIED "$work/body"; then
		direct+=("ok    $fn: $url$path without the origin secret: 403 DENIED")
		log "ok: $fn refuses a direct call without the origin secret (403 DENIED)"
	else
		direct+=("FAIL  $fn: $url$path without the origin secret: $st")
		fail "direct call to the $fn function without the origin secret: $st $(head -c 300 "$work/body")"
	fi
}
direct_call catalog "$LS_CATALOG_URL" /v2/
direct_call manifest "$LS_MANIFEST_URL" /v2/e2e/direct/manifests/latest
direct_call blob "$LS_BLOB_URL" /v2/e2e/direct/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000

# ---- 6. the front door: CloudFront's part, before the Function URLs
"$work/lambdafront" -proxy "$LS_PROXY" -origin-secret-file "$ls_build/origin-secret" -connect "127.0.0.1:$ls_port" \
	-addr-file "$work/addr" >"$out/lambdafront.out" 2>"$out/lambdafront.log" &
front_pid=$!
for _ in $(seq 1 100); do
	[[ -s "$work/addr" ]] && break
	if ! kill -0 "$front_pid" 2>/dev/null; then
		cat "$out/lambdafront.out" "$out/lambdafront.log" >&2
		die "lambdafront exited at start"
	fi
	sleep 0.1
done
[[ -s "$work/addr" ]] || die "lambdafront not ready after 10s"
addr="$(cat "$work/addr")"
grep ready "$out/lambdafront.out" >&2

# ---- 7. the checks shared with `make e2e-lambda`
checks_rc=0
LAMBDA_CHECKS_USER="$user" LAMBDA_CHECKS_PASSWORD="$password" scripts/lambda-checks.sh "$addr" "$out" localstack || checks_rc=$?
if [[ -s "$out/failures.txt" ]]; then
	while IFS= read -r line; do
		if [[ -n "$line" ]]; then failures+=("$line"); fi
	done <"$out/failures.txt"
elif [[ "$checks_rc" != 0 ]]; then
	fail "scripts/lambda-checks.sh exited $checks_rc without a list of failures"
fi

# ---- 8. report
{
	echo "== LocalStack"
	cat "$out/localstack-version.txt"
	echo "functions: $function_arch bootstraps (FUNCTION_ARCH), the stack declares arm64"
	echo
	echo "== the stack (localstack/build/stack.env)"
	grep -v '^#' "$ls_build/stack.env"
	echo
	echo "== direct calls to the Function URLs"
	printf '%s\n' "${direct[@]}"
	echo
	echo "(front door: lambdafront -proxy)"
	cat "$out/checks-summary.txt" 2>/dev/null || echo "(no report from scripts/lambda-checks.sh: see its output)"
	if [[ ${#failures[@]} -gt 0 ]]; then
		echo
		echo "== FAILURES"
		printf '  %s\n' "${failures[@]}"
	fi
} | tee "$out/summary.txt"

if [[ ${#failures[@]} -gt 0 ]]; then
	log "FAILED (${#failures[@]}); logs in $out (LocalStack's own: localstack.log; LOCALSTACK_DEBUG=1 for more)"
	exit 1
fi
log "passed; logs in $out"
