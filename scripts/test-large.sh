#!/usr/bin/env bash
# The whole-layer client test with a 1 GiB layer through the AWS-shaped stack
# with the ingest service (scripts/stack.sh): skopeo, podman, crane, oras and
# regctl (default settings) push it and pull it back, digests unchanged.
# Too slow and too big for `make test`: `make test-large` runs it.
#
#   scripts/test-large.sh         LAYER_MIB (default 1024) sets the size
#
# The S3 stand-in keeps objects in memory: five 1 GiB pushes need about
# 12 GB of RAM.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf 'test-large: %s\n' "$*" >&2; }
if [[ -z "${AWS_ENDPOINT_URL_S3:-}" || -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
	exec "$root/scripts/with-standins.sh" "$0" "$@"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-test-large.XXXXXX")"
out="$root/results/test-large"
mkdir -p "$out"
STACK_INGEST=1 STACK_LOGS="$out/stack" SKIFF_STACK_ENV="$work/stack.env" scripts/stack.sh >"$out/stack.out" 2>&1 &
stack=$!
trap 'kill -TERM "$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 1200); do
	[[ -s "$work/stack.env" ]] && break
	kill -0 "$stack" 2>/dev/null || { log "the stack did not start:"; cat "$out/stack.out" >&2; exit 1; }
	sleep 0.1
done
# shellcheck disable=SC1091
. "$work/stack.env"
start=$SECONDS
rc=0
PATH="$root/.tools/bin:$PATH" SKIFF_IT_REGISTRY="$REGISTRY" SKIFF_IT_USER="$ADMIN_USER" SKIFF_IT_PASSWORD="$ADMIN_PASSWORD" \
	SKIFF_IT_LAYER_MIB="${LAYER_MIB:-1024}" SKIFF_REQUIRE_TOOLS=1 GOFLAGS='' \
	go test -count=1 -v -timeout 30m -run '^TestWholeLayerClients$' ./test/integration >"$out/test.log" 2>&1 || rc=$?
grep -E '^\s*--- (PASS|FAIL)|pushed|refused' "$out/test.log" || true
log "$( ((rc == 0)) && echo passed || echo FAILED) in $((SECONDS - start)) s (log: $out/test.log)"
exit "$rc"
