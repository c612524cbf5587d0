#!/usr/bin/env bash
# The checks both Lambda runs make through their front door: the emulator
# harness (scripts/e2e-lambda.sh, `make e2e-lambda`) and LocalStack
# (localstack/test.sh). One suite, so the two paths can't drift apart.
#
#   LAMBDA_CHECKS_USER=USER LAMBDA_CHECKS_PASSWORD=PASSWORD \
#     scripts/lambda-checks.sh HOST:PORT OUT_DIR [LABEL]
#
# HOST:PORT is the front door (plain HTTP). With LAMBDA_CHECKS_USER set the
# registry must authenticate and the user be an admin; without it, let
# anyone in. LAMBDA_CHECKS_INGEST=1: uploads go to the ingest service (no
# body cap); otherwise the functions' 4 MiB cap holds (SKIFF_IT_BODY_CAP).
#
# It runs the project's integration tests against it
# (scripts/integration-external.sh: every test of test/integration, the
# same suite as on every other path), which include the OCI conformance
# suite (TestConformance, results in results/conformance/LABEL/), the real
# clients (TestClientRoundTrip, TestChunkedPush, TestWholeLayerClients:
# whole-layer pushes refused with the registry's advice behind the cap,
# taken with ingest) and the body limits (TestBodyLimits: the front door's
# 413, the function's, Lambda's 6 MB payload). Writes OUT_DIR/failures.txt
# (a line per failed check) and OUT_DIR/checks-summary.txt (the report both
# runs print); exits 1 when a check failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ $# -lt 2 || $# -gt 3 ]]; then
	echo "usage: LAMBDA_CHECKS_USER=U LAMBDA_CHECKS_PASSWORD=P scripts/lambda-checks.sh HOST:PORT OUT_DIR [LABEL]" >&2
	exit 2
fi
addr="$1" out="$2" label="${3:-lambda}"
user="${LAMBDA_CHECKS_USER:-}"
mkdir -p "$out"
: >"$out/failures.txt"
cap=4194304
if [[ "${LAMBDA_CHECKS_INGEST:-0}" == 1 ]]; then cap=""; fi
rc=0
SKIFF_IT_USER="$user" SKIFF_IT_PASSWORD="${user:+${LAMBDA_CHECKS_PASSWORD:-}}" SKIFF_IT_BODY_CAP="$cap" CONFORMANCE_LABEL="$label" \
	scripts/integration-external.sh "$addr" "$out" || rc=$?
if [[ $rc -ne 0 ]]; then
	printf 'test/integration through the front door: %s (%s/integration.log)\n' \
		"$(head -n 1 "$out/integration.txt" 2>/dev/null || echo "no summary")" "$out" >>"$out/failures.txt"
fi
{
	echo "== OCI conformance through the front door"
	cat "$root/results/conformance/$label/summary.txt" 2>/dev/null || echo "[$label] no summary"
	echo
	echo "== test/integration through the front door (scripts/integration-external.sh)"
	cat "$out/integration.txt" 2>/dev/null || echo "(no results: see the output of scripts/integration-external.sh)"
	if [[ -f "$out/lambdafront.log" ]]; then
		echo
		echo "== requests per function (lambdafront.log)"
		for fn in manifest blob catalog ingest; do
			printf '%-9s %6d\n' "$fn" "$(grep -c "\"fn\":\"$fn\"" "$out/lambdafront.log" || true)"
		done
	fi
} >"$out/checks-summary.txt"
exit "$rc"
