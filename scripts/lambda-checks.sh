#!/usr/bin/env bash
# The checks of the Lambda end-to-end test (test/lambda, `make e2e-lambda`)
# against a deployment that is already running (LocalStack:
# localstack/test.sh): every test of test/integration through its front
# door, the conformance suite first (label LABEL).
#
#   LAMBDA_CHECKS_USER=USER LAMBDA_CHECKS_PASSWORD=PASSWORD \
#     scripts/lambda-checks.sh HOST:PORT OUT_DIR [LABEL]
#
# LAMBDA_CHECKS_INGEST=1: uploads have no body cap. The report is in
# results/e2e-lambda/LABEL/summary.txt, copied to OUT_DIR/checks-summary.txt;
# a failure is also a line in OUT_DIR/failures.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 2 || $# -gt 3 ]]; then
	echo "usage: LAMBDA_CHECKS_USER=U LAMBDA_CHECKS_PASSWORD=P scripts/lambda-checks.sh HOST:PORT OUT_DIR [LABEL]" >&2
	exit 2
fi
label="${3:-lambda}"
mkdir -p "$2"
: >"$2/failures.txt"
rc=0
(cd "$root" && SKIFF_E2E_REGISTRY="$1" SKIFF_E2E_LABEL="$label" SKIFF_E2E_USER="${LAMBDA_CHECKS_USER:-}" \
	SKIFF_E2E_PASSWORD="${LAMBDA_CHECKS_PASSWORD:-}" SKIFF_E2E_INGEST="${LAMBDA_CHECKS_INGEST:-0}" \
	GOFLAGS='' go test -tags e2e -count=1 -timeout 30m -run '^TestLambdaStack$' ./test/lambda) || rc=$?
cp "$root/results/e2e-lambda/$label/summary.txt" "$2/checks-summary.txt" 2>/dev/null || true
[[ $rc -eq 0 ]] || echo "test/lambda against http://$1 failed (results/e2e-lambda/$label/)" >>"$2/failures.txt"
exit "$rc"
