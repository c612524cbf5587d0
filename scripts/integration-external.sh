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
# the tests that apply to a registry the harness does not start (`tests`
# below; TestIntegrationExternalSelection keeps the list right), with
# SKIFF_REQUIRE_TOOLS=1, each under its own repository prefix.
#
# Writes OUT_DIR/integration.log (go test -v) and OUT_DIR/integration.txt
# (a count line, then each test's verdict and duration). Exits 1 when a test
# failed or was skipped, or when one of the list did not run. Without
# SKIFF_IT_USER (a registry without authentication) TestClientLogin is left
# out, and the summary says so.
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

# What doesn't apply: TestRestartDurability (it kills and restarts its own
# server). A test that needs its own server fails when selected here.
tests=(TestArtifactReferrers TestChunkedPush TestClientLogin TestClientRoundTrip TestPartialMirror TestPodmanRoundTrip TestWholeLayerClients)
note=""
if [[ -z "${SKIFF_IT_USER:-}" ]]; then
	# No admin, so a registry without authentication: TestClientLogin
	# (users, logins, refusals) does not apply.
	tests=(TestArtifactReferrers TestChunkedPush TestClientRoundTrip TestPartialMirror TestPodmanRoundTrip TestWholeLayerClients)
	note="TestClientLogin not run: no SKIFF_IT_USER, the registry has no authentication"
fi
regex="^($(
	IFS='|'
	echo "${tests[*]}"
))\$"

export PATH="${TOOLS_DIR:-$root/.tools}/bin:$PATH"
start=$SECONDS
rc=0
SKIFF_IT_REGISTRY="$addr" SKIFF_REQUIRE_TOOLS=1 GOFLAGS='' \
	go test -count=1 -v -timeout "${IT_EXTERNAL_TIMEOUT:-5m}" -run "$regex" ./test/integration \
	>"$out/integration.log" 2>&1 || rc=$?
elapsed=$((SECONDS - start))

# Top-level results start the line; subtests are indented.
passed=() failed=() skipped=() ran=()
while IFS= read -r line; do
	if [[ "$line" =~ ^---\ (PASS|FAIL|SKIP):\ ([A-Za-z0-9_]+)\ \(([0-9.]+s)\) ]]; then
		verdict="${BASH_REMATCH[1]}" name="${BASH_REMATCH[2]}" dur="${BASH_REMATCH[3]}"
		ran+=("$name")
		case "$verdict" in
		PASS) passed+=("$name ($dur)") ;;
		FAIL) failed+=("$name ($dur)") ;;
		SKIP) skipped+=("$name ($dur)") ;;
		esac
	fi
done <"$out/integration.log"
sub_pass="$(grep -cE '^ +--- PASS: ' "$out/integration.log" || true)"
sub_fail="$(grep -cE '^ +--- FAIL: ' "$out/integration.log" || true)"
sub_skip="$(grep -cE '^ +--- SKIP: ' "$out/integration.log" || true)"
missing=()
for t in "${tests[@]}"; do
	[[ " ${ran[*]} " == *" $t "* ]] || missing+=("$t")
done

shown="${out#"$root"/}"
{
	printf 'test/integration against http://%s: %d of %d tests passed (%d subtests), %d failed, %d skipped, in %ds\n' \
		"$addr" "${#passed[@]}" "${#tests[@]}" "$sub_pass" "$((${#failed[@]} + sub_fail))" "$((${#skipped[@]} + sub_skip))" "$elapsed"
	for p in "${passed[@]}"; do printf 'ok    %s\n' "$p"; done
	for f in "${failed[@]}"; do printf 'FAIL  %s\n' "$f"; done
	for s in "${skipped[@]}"; do printf 'SKIP  %s (a skip is a failure here)\n' "$s"; done
	for m in "${missing[@]}"; do printf 'FAIL  %s did not run\n' "$m"; done
	if [[ -n "$note" ]]; then printf '%s\n' "$note"; fi
	printf "(go test -run '%s'; output: %s/integration.log)\n" "$regex" "$shown"
} >"$out/integration.txt"
cat "$out/integration.txt" >&2

if [[ "$rc" != 0 || ${#failed[@]} -gt 0 || ${#skipped[@]} -gt 0 || "$sub_fail" -gt 0 || "$sub_skip" -gt 0 || ${#missing[@]} -gt 0 ]]; then
	if [[ "$rc" != 0 && ${#failed[@]} -eq 0 && ${#missing[@]} -eq 0 ]]; then
		log "go test exited $rc; the end of its output:"
		tail -n 30 "$out/integration.log" >&2
	fi
	exit 1
fi
