#!/usr/bin/env bash
# The Go integration tests (test/integration: real clients crane, regctl,
# skopeo, oras, podman, cosign) against a registry that is already running,
# such as the Lambda functions behind their front door: the step both Lambda
# runs make after scripts/lambda-checks.sh (scripts/e2e-lambda.sh,
# localstack/test.sh).
#
#   SKIFF_IT_USER=USER SKIFF_IT_PASSWORD=PASSWORD \
#     scripts/integration-external.sh HOST:PORT OUT_DIR
#
# HOST:PORT is plain HTTP; with SKIFF_IT_USER set the registry must
# authenticate and the user be an admin (test/integration/doc.go). It runs
# every test of the package with SKIFF_REQUIRE_TOOLS=1, each under its own
# repository prefix; a test that can't apply to a registry the harness does
# not start says so (notApplicable: it needs its own server, `skiff serve`
# flags, or users on a registry without authentication) and is listed as
# n/a.
#
# Writes OUT_DIR/integration.log (go test -v) and OUT_DIR/integration.txt
# (a count line, then each test's verdict and duration). Exits 1 when a test
# failed, or was skipped for any other reason, or when none ran.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'integration-external: %s\n' "$*" >&2; }

if [[ $# -ne 2 ]]; then
	log "usage: SKIFF_IT_USER=U SKIFF_IT_PASSWORD=P scripts/integration-external.sh HOST:PORT OUT_DIR"
	exit 2
fi
addr="$1"
out="$2"
mkdir -p "$out"

# Every test of the package runs: one that can't apply to an external
# registry (it needs a server of its own, `skiff serve` flags, or users on a
# registry without authentication) skips and names itself in $na; any other
# skip fails the step.
na="$out/not-applicable.txt"
: >"$na"

export PATH="${TOOLS_DIR:-$root/.tools}/bin:$PATH"
start=$SECONDS
rc=0
# The conformance suite first, on its own (as on every other path), then
# the rest in parallel.
: >"$out/integration.log"
for sel in "-run=^TestConformance\$" "-skip=^TestConformance\$"; do
	SKIFF_IT_REGISTRY="$addr" SKIFF_IT_NOT_APPLICABLE="$na" SKIFF_REQUIRE_TOOLS=1 GOFLAGS='' \
		go test -count=1 -v -timeout "${IT_EXTERNAL_TIMEOUT:-10m}" "$sel" ./test/integration \
		>>"$out/integration.log" 2>&1 || rc=$?
done
elapsed=$((SECONDS - start))

# Top-level results start the line; subtests are indented.
passed=() failed=() skipped=() notapp=()
while IFS= read -r line; do
	if [[ "$line" =~ ^---\ (PASS|FAIL|SKIP):\ ([A-Za-z0-9_]+)\ \(([0-9.]+s)\) ]]; then
		verdict="${BASH_REMATCH[1]}" name="${BASH_REMATCH[2]}" dur="${BASH_REMATCH[3]}"
		case "$verdict" in
		PASS) passed+=("$name ($dur)") ;;
		FAIL) failed+=("$name ($dur)") ;;
		SKIP)
			if grep -qx "$name" "$na"; then notapp+=("$name"); else skipped+=("$name ($dur)"); fi
			;;
		esac
	fi
done <"$out/integration.log"
sub_pass="$(grep -cE '^ +--- PASS: ' "$out/integration.log" || true)"
sub_fail="$(grep -cE '^ +--- FAIL: ' "$out/integration.log" || true)"
sub_skip="$(grep -cE '^ +--- SKIP: ' "$out/integration.log" || true)"
applies=$((${#passed[@]} + ${#failed[@]} + ${#skipped[@]}))

shown="${out#"$root"/}"
{
	printf 'test/integration against http://%s: %d of %d tests passed (%d subtests), %d failed, %d skipped, in %ds\n' \
		"$addr" "${#passed[@]}" "$applies" "$sub_pass" "$((${#failed[@]} + sub_fail))" "$((${#skipped[@]} + sub_skip))" "$elapsed"
	for p in "${passed[@]}"; do printf 'ok    %s\n' "$p"; done
	for f in "${failed[@]}"; do printf 'FAIL  %s\n' "$f"; done
	for s in "${skipped[@]}"; do printf 'SKIP  %s (a skip is a failure here)\n' "$s"; done
	if [[ ${#notapp[@]} -gt 0 ]]; then printf 'n/a   %s (they say why in %s/integration.log)\n' "${notapp[*]}" "$shown"; fi
	if [[ ${#passed[@]} -eq 0 ]]; then printf 'FAIL  no test ran\n'; fi
	printf "(go test ./test/integration; output: %s/integration.log)\n" "$shown"
} >"$out/integration.txt"
cat "$out/integration.txt" >&2

if [[ "$rc" != 0 || ${#failed[@]} -gt 0 || ${#skipped[@]} -gt 0 || "$sub_fail" -gt 0 || "$sub_skip" -gt 0 || ${#passed[@]} -eq 0 ]]; then
	if [[ "$rc" != 0 && ${#failed[@]} -eq 0 ]]; then
		log "go test exited $rc; the end of its output:"
		tail -n 30 "$out/integration.log" >&2
	fi
	exit 1
fi
