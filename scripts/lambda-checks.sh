#!/usr/bin/env bash
# The checks both Lambda runs make through their front door: the emulator
# harness (scripts/e2e-lambda.sh, `make e2e-lambda`) and LocalStack
# (localstack/test.sh, `make localstack-test`). One suite, so the two paths
# can't drift apart.
#
#   LAMBDA_CHECKS_USER=USER LAMBDA_CHECKS_PASSWORD=PASSWORD \
#     scripts/lambda-checks.sh HOST:PORT OUT_DIR [LABEL]
#
# HOST:PORT is the front door (plain HTTP). With LAMBDA_CHECKS_USER set the
# registry is expected to authenticate and the user to be an admin; without
# it, to allow anonymous access. LABEL names the conformance run
# (results/conformance/LABEL/, default "lambda").
#
# Checks, in order:
#   1. the front door: GET /v2/ answers 200 (and 401 without credentials);
#      without the ingest service, a 5 MiB PATCH is refused by the front
#      door (413 SIZE_INVALID with advice: its Content-Length is over the
#      functions' cap), a streamed 4.25 MiB one by the function (413
#      SIZE_INVALID) and a streamed 5 MiB one by Lambda (its event would
#      exceed the 6 MB payload); with it (LAMBDA_CHECKS_INGEST=1), a 5 MiB
#      PATCH is taken;
#   3. real clients: crane (push, copy, pull, a 2 MiB layer), regctl (a
#      12 MiB artifact in 4 MiB chunks, a 12 MiB image imported from a
#      tarball, copies), oras (push, copy, pull), skopeo (copies, a pull of
#      the 12 MiB image); crane, oras and skopeo pushes of the 12 MiB image
#      must fail with 413 and the registry's advice (with the ingest
#      service, LAMBDA_CHECKS_INGEST=1: must succeed);
#   4. the project's integration tests (scripts/integration-external.sh:
#      test/integration with SKIFF_IT_REGISTRY=HOST:PORT, the user as its
#      admin), the same suite as on every other path, TestConformance
#      included: the OCI conformance suite (label LABEL) with every optional
#      test on but the blob Docker-Content-Digest check (blob GETs of
#      >= 1 MiB are 307s to presigned S3 URLs, and S3 can't send that
#      header), sha512 data.
#
# Writes OUT_DIR/clients/<step>.log (each client step's output),
# OUT_DIR/clients.txt (one "ok"/"FAIL" line per client step),
# OUT_DIR/integration.txt and .log (step 4), OUT_DIR/failures.txt (one line
# per failed check, empty when all passed) and OUT_DIR/checks-summary.txt
# (the report both runs print).
# Exits 1 when any check failed. The client tools come from .tools/bin
# (scripts/tools.sh), then PATH; skopeo from PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'lambda-checks: %s\n' "$*" >&2; }

if [[ $# -lt 2 || $# -gt 3 ]]; then
	log "usage: LAMBDA_CHECKS_USER=U LAMBDA_CHECKS_PASSWORD=P scripts/lambda-checks.sh HOST:PORT OUT_DIR [LABEL]"
	exit 2
fi
addr="$1"
out="$2"
label="${3:-lambda}"
user="${LAMBDA_CHECKS_USER:-}"
password="${LAMBDA_CHECKS_PASSWORD:-}"
if [[ -n "$user" && -z "$password" ]]; then
	log "LAMBDA_CHECKS_USER is set but LAMBDA_CHECKS_PASSWORD is not"
	exit 2
fi
auth=false
if [[ -n "$user" ]]; then auth=true; fi

export PATH="${TOOLS_DIR:-$root/.tools}/bin:$PATH"
mkdir -p "$out/clients"
: >"$out/failures.txt"
: >"$out/clients.txt"
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-lambda-checks.XXXXXX")"
finished=""
on_exit() {
	local rc=$?
	# Stopped by set -e or a signal before the end: say so in the list.
	if [[ -z "$finished" ]]; then
		printf 'scripts/lambda-checks.sh stopped early (status %s): see its output\n' "$rc" >>"$out/failures.txt"
	fi
	rm -rf "$work"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failed=0
fail() {
	failed=$((failed + 1))
	printf '%s\n' "$*" >>"$out/failures.txt"
	log "FAIL: $*"
}

# ---- 1. the front door
# curl_status ARGS...: the status code of a request through the front door.
curl_status() { curl -s -o "$work/body" -w '%{http_code}' "$@" || true; }
basic=()
if [[ "$auth" == true ]]; then basic=(-u "$user:$password"); fi

st="$(curl_status "${basic[@]}" "http://$addr/v2/")"
[[ "$st" == 200 ]] || fail "GET /v2/ through the front door: $st $(head -c 300 "$work/body")"
if [[ "$auth" == true ]]; then
	st="$(curl_status "http://$addr/v2/")"
	[[ "$st" == 401 ]] || fail "GET /v2/ without credentials: $st, want 401"
fi

# Body limits: an event over 6 MB is refused by Lambda (at the front door);
# a body over the functions' 4 MiB cap by the function, with advice.
head -c $((5 << 20)) /dev/urandom >"$work/5mib"
head -c $(((4 << 20) + (256 << 10))) /dev/urandom >"$work/4.25mib"
st="$(curl_status "${basic[@]}" -X POST -D "$work/headers" "http://$addr/v2/e2e/limits/blobs/uploads/")"
location="$(sed -n 's/^[Ll]ocation: *\(.*\)\r$/\1/p' "$work/headers")"
if [[ "$st" != 202 || -z "$location" ]]; then
	fail "POST upload session: $st $(head -c 300 "$work/body")"
else
	[[ "$location" == http* ]] || location="http://$addr$location"
	if [[ "${LAMBDA_CHECKS_INGEST:-0}" == 1 ]]; then
		# With the ingest service, uploads have no cap: 5 MiB in one PATCH.
		st="$(curl_status "${basic[@]}" -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @"$work/5mib" "$location")"
		if [[ "$st" == 202 ]]; then
			log "ok: a 5 MiB PATCH goes to the ingest service: 202"
		else
			fail "5 MiB PATCH with the ingest service: $st $(head -c 300 "$work/body"), want 202"
		fi
	else
		# Declared over the cap: the front door's own 413, with advice.
		st="$(curl_status "${basic[@]}" -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @"$work/5mib" "$location")"
		if [[ "$st" == 413 ]] && grep -q 'SIZE_INVALID' "$work/body" && grep -q 'ingest service' "$work/body"; then
			log "ok: a 5 MiB PATCH is refused at the front door: 413 SIZE_INVALID with advice"
		else
			fail "5 MiB PATCH: $st $(head -c 300 "$work/body"), want 413 SIZE_INVALID from the front door"
		fi
		# Streamed (no Content-Length): the function cuts it at its cap, or
		# Lambda refuses an event over 6 MB.
		st="$(curl_status "${basic[@]}" -X PATCH -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' --data-binary @"$work/4.25mib" "$location")"
		if [[ "$st" == 413 ]] && grep -q 'SIZE_INVALID' "$work/body" && grep -q 'ingest service' "$work/body"; then
			log "ok: a streamed 4.25 MiB PATCH is cut by the function's body cap: 413 SIZE_INVALID, the front door's advice"
		else
			fail "streamed 4.25 MiB PATCH: $st $(head -c 300 "$work/body"), want 413 SIZE_INVALID from the function"
		fi
		st="$(curl_status "${basic[@]}" -X PATCH -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' --data-binary @"$work/5mib" "$location")"
		if [[ "$st" == 413 ]] && grep -q 'Request must be smaller than' "$work/body"; then
			log "ok: a streamed 5 MiB PATCH (6.7 MB as base64) is refused by Lambda's payload limit: 413"
		else
			fail "streamed 5 MiB PATCH: $st $(head -c 300 "$work/body"), want Lambda's 413"
		fi
	fi
fi

# ---- 3. real clients
clients=()
# Log paths as the summary shows them: relative to the repository if inside.
shown="${out#"$root"/}"
# step NAME CMD...: runs one client step, output in OUT_DIR/clients/NAME.log.
# The step runs in the background so that set -e holds inside it: bash
# ignores -e in anything run as an `if` or `||` condition (and in every
# subshell forked from there), so a command failing in the middle of a flow
# would go unnoticed whenever a later one succeeded.
step() {
	local name="$1"
	shift
	(
		set -e
		"$@"
	) >"$out/clients/$name.log" 2>&1 &
	if wait $!; then
		clients+=("ok    $name")
	else
		clients+=("FAIL  $name ($shown/clients/$name.log)")
		fail "client step $name: $(tail -n 3 "$out/clients/$name.log" | tr '\n' ' ')"
	fi
}
# must_refuse NAME CMD...: the step must fail, saying 413 or the body limit.
must_refuse() {
	local name="$1"
	shift
	if "$@" >"$out/clients/$name.log" 2>&1; then
		clients+=("FAIL  $name: succeeded, want a refusal (413)")
		fail "client step $name succeeded but must exceed the body limit"
		return 1
	fi
	if grep -Eqi '413|Request Entity Too Large|SIZE_INVALID|must be smaller' "$out/clients/$name.log"; then
		clients+=("ok    $name (refused with 413, as expected)")
		return 0
	fi
	clients+=("FAIL  $name: failed, but not with 413 ($shown/clients/$name.log)")
	fail "client step $name failed without a 413: $(tail -n 3 "$out/clients/$name.log" | tr '\n' ' ')"
}
same() { [[ "$1" == "$2" ]] || { echo "digest mismatch: $1 != $2"; return 1; }; }

# The clients keep their logins and settings here, not in the caller's home.
caller_home="$HOME"
export HOME="$work/home" DOCKER_CONFIG="$work/home/.docker" REGISTRY_AUTH_FILE="$work/home/auth.json"
mkdir -p "$HOME" "$DOCKER_CONFIG"
printf 'unqualified-search-registries = []\n' >"$work/registries.conf"
# Presigned S3 URLs name localhost.localstack.cloud in the LocalStack run.
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf" \
	NO_PROXY="127.0.0.1,localhost,localhost.localstack.cloud" no_proxy="127.0.0.1,localhost,localhost.localstack.cloud"
src_creds=()
dest_creds=()
if [[ "$auth" == true ]]; then
	src_creds=(--src-creds "$user:$password")
	dest_creds=(--dest-creds "$user:$password")
	crane auth login "$addr" -u "$user" -p "$password" >/dev/null 2>&1 || fail "crane auth login"
	printf '%s\n' "$password" | oras login --plain-http -u "$user" --password-stdin "$addr" >/dev/null 2>&1 || fail "oras login"
fi
# (It pings the registry too, and fails when that fails; the settings are
# saved all the same.)
regctl registry set "$addr" --tls disabled --blob-chunk $((4 << 20)) --blob-max $((4 << 20)) >/dev/null 2>&1 ||
	fail "regctl registry set (the registry's ping failed)"
if [[ "$auth" == true ]]; then
	printf '%s\n' "$password" | regctl registry login "$addr" -u "$user" --pass-stdin >/dev/null 2>&1 || fail "regctl registry login"
fi

# Content: a 2 MiB layer (above the 1 MiB redirect threshold: pulls follow a
# 307 to S3) and a 12 MiB one (three 4 MiB chunks).
mkdir -p "$work/small" "$work/big"
head -c $((2 << 20)) /dev/urandom >"$work/small/data.bin"
head -c $((12 << 20)) /dev/urandom >"$work/big/data.bin"
tar -C "$work/small" -cf "$work/small.tar" data.bin
tar -C "$work/big" -cf "$work/big.tar" data.bin
big_sha="$(sha256sum "$work/big/data.bin" | cut -d' ' -f1)"
small_sha="$(sha256sum "$work/small/data.bin" | cut -d' ' -f1)"

crane_flow() {
	crane append --insecure --oci-empty-base -f "$work/small.tar" -t "$addr/e2e/crane:v1"
	crane copy --insecure "$addr/e2e/crane:v1" "$addr/e2e/crane-copy:v1"
	same "$(crane digest --insecure "$addr/e2e/crane:v1")" "$(crane digest --insecure "$addr/e2e/crane-copy:v1")"
	crane pull --insecure --format=oci "$addr/e2e/crane-copy:v1" "$work/crane-pull"
	crane export --insecure "$addr/e2e/crane-copy:v1" - | tar -xO data.bin | sha256sum | grep -q "$small_sha"
}
regctl_flow() {
	# 12 MiB in chunked PATCHes of at most 4 MiB, then a mount and a pull.
	regctl artifact put --artifact-type application/vnd.skiff.e2e --file "$work/big/data.bin" "$addr/e2e/regctl:big"
	regctl image copy "$addr/e2e/regctl:big" "$addr/e2e/regctl-copy:big"
	regctl artifact get "$addr/e2e/regctl-copy:big" | sha256sum | grep -q "$big_sha"
	# A 12 MiB image from a tarball, for the clients that cannot push it.
	crane append --oci-empty-base -f "$work/big.tar" -t "$addr/e2e/big:v1" -o "$work/big-image.tar"
	regctl image import "$addr/e2e/big:v1" "$work/big-image.tar"
	regctl image copy "$addr/e2e/crane:v1" "$addr/e2e/regctl:small"
	same "$(regctl image digest "$addr/e2e/crane:v1")" "$(regctl image digest "$addr/e2e/regctl:small")"
}
oras_flow() {
	(cd "$work/small" && oras push --no-tty --plain-http "$addr/e2e/oras:v1" data.bin:application/octet-stream)
	oras cp --no-tty --from-plain-http --to-plain-http "$addr/e2e/oras:v1" "$addr/e2e/oras-copy:v1"
	mkdir -p "$work/oras-pull"
	oras pull --no-tty --plain-http -o "$work/oras-pull" "$addr/e2e/oras-copy:v1"
	sha256sum "$work/oras-pull/data.bin" | grep -q "$small_sha"
}
skopeo_flow() {
	skopeo copy --src-tls-verify=false --dest-tls-verify=false --preserve-digests "${src_creds[@]}" "${dest_creds[@]}" \
		"docker://$addr/e2e/crane:v1" "docker://$addr/e2e/skopeo:v1"
	# The 12 MiB image pushed by regctl: pulled (307 to S3), then copied
	# inside the registry (mounted, no upload).
	skopeo copy --src-tls-verify=false "${src_creds[@]}" "docker://$addr/e2e/big:v1" "oci:$work/skopeo-pull:v1"
	skopeo copy --src-tls-verify=false --dest-tls-verify=false --preserve-digests "${src_creds[@]}" "${dest_creds[@]}" \
		"docker://$addr/e2e/big:v1" "docker://$addr/e2e/skopeo-big:v1"
	same "$(crane digest --insecure "$addr/e2e/big:v1")" "$(crane digest --insecure "$addr/e2e/skopeo-big:v1")"
}
step crane crane_flow
step regctl-chunked regctl_flow
step oras oras_flow
step skopeo skopeo_flow
# Pushes from outside that send a 12 MiB layer in one request.
# With the ingest service they are taken; without it, refused at the front
# door with the registry's advice.
whole=must_refuse
if [[ "${LAMBDA_CHECKS_INGEST:-0}" == 1 ]]; then whole=step; fi
$whole crane-push-12MiB crane push --insecure "$work/big-image.tar" "$addr/e2e/crane-big:v1" || true
$whole oras-push-12MiB bash -c "cd '$work/big' && oras push --no-tty --plain-http '$addr/e2e/oras-big:v1' data.bin:application/octet-stream" || true
$whole skopeo-push-12MiB skopeo copy --dest-tls-verify=false "${dest_creds[@]}" \
	"docker-archive:$work/big-image.tar" "docker://$addr/e2e/skopeo-archive:v1" || true

printf '%s\n' "${clients[@]}" >"$out/clients.txt"

# ---- 4. the project's integration tests, the same suite as on the other
# paths (OUT_DIR/integration.txt, .log)
# In the caller's home (Go's build cache is there) and without the client
# settings above: the tests give each client a home of its own.
if ! env -u DOCKER_CONFIG -u REGISTRY_AUTH_FILE -u CONTAINERS_REGISTRIES_CONF HOME="$caller_home" \
	SKIFF_IT_USER="$user" SKIFF_IT_PASSWORD="${user:+$password}" CONFORMANCE_LABEL="$label" scripts/integration-external.sh "$addr" "$out"; then
	fail "test/integration through the front door: $(head -n 1 "$out/integration.txt" 2>/dev/null || echo "no summary") ($out/integration.log)"
fi

# The report both runs print (OUT_DIR/checks-summary.txt).
{
	echo "== OCI conformance through the front door"
	cat "$root/results/conformance/$label/summary.txt" 2>/dev/null || echo "[$label] no summary"
	echo
	echo "== real clients through the front door"
	cat "$out/clients.txt"
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
finished=1
if [[ "$failed" -gt 0 ]]; then
	log "$failed check(s) failed (list: $out/failures.txt)"
	exit 1
fi
log "all checks passed through http://$addr"
