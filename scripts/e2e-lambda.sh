#!/usr/bin/env bash
# End-to-end test of the Lambda functions, locally: the three bootstraps under
# the Lambda Runtime Interface Emulator, behind tools/lambdafront (the stand-in
# for CloudFront and the Function URLs), on the AWS stand-ins.
#
#   scripts/e2e-lambda.sh
#
# Steps (everything it starts is stopped at the end, pass or fail):
#   1. tools: scripts/tools.sh (conformance, crane, regctl, oras, skopeo) and
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
#   5. checks: a direct call without the origin secret is refused; the body
#      limits answer 413 (Lambda's 6 MB payload at the front door, the
#      function's 4 MiB cap with advice to chunk);
#   6. the OCI conformance suite through the front door (scripts/conformance.sh
#      HOST:PORT, label "lambda"): every optional test on but the blob
#      Docker-Content-Digest check (blob GETs of >= 1 MiB are 307s to S3,
#      which can't send that header), sha512 data, with the admin's
#      credentials; zero failures required;
#   7. real clients through the front door: crane, regctl (chunked), oras and
#      skopeo push, copy and pull; pushes that must exceed the limits are
#      checked to fail with 413;
#   8. a report: zip sizes, each instance's cold-start init time (the
#      functions' "init" line and the emulator's REPORT), conformance counts,
#      client results. Also in results/e2e-lambda/summary.txt.
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
# The harness must route as the deployed distribution does.
GOFLAGS='' go test -count=1 -run TestBehaviorsMatchStack ./tools/lambdafront >/dev/null ||
	fail "tools/lambdafront routes differ from infra/stacks/frontdoor.go (go test -run TestBehaviorsMatchStack ./tools/lambdafront)"

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

# curl_status ARGS...: the status code of a request through the front door.
curl_status() { curl -s -o "$work/body" -w '%{http_code}' "$@" || true; }
basic=()
if [[ "$auth" == true ]]; then basic=(-u "$user:$password"); fi

# ---- 5. checks of the Lambda wiring
# The first request of each function is a cold start.
st="$(curl_status "${basic[@]}" "http://$addr/v2/")"
[[ "$st" == 200 ]] || fail "GET /v2/ through the front door: $st $(cat "$work/body")"
if [[ "$auth" == true ]]; then
	st="$(curl_status "http://$addr/v2/")"
	[[ "$st" == 401 ]] || fail "GET /v2/ without credentials: $st, want 401"
fi

# A direct call to a function (not through CloudFront) lacks the origin secret.
invoke="$(sed -n 's/^lambdafront: instance catalog\/0 invoke=\([^ ]*\) .*/\1/p' "$out/lambdafront.out")"
direct='{"version":"2.0","rawPath":"/v2/","rawQueryString":"","headers":{"host":"x.lambda-url.us-east-1.on.aws"},"requestContext":{"http":{"method":"GET","path":"/v2/","sourceIp":"192.0.2.1"}},"isBase64Encoded":false}'
resp="$(curl -s -X POST --data-binary "$direct" "$invoke" || true)"
if [[ "$resp" == *'"statusCode":403'* && "$resp" == *DENIED* ]]; then
	log "ok: a direct call without the origin secret is refused (403 DENIED)"
else
	fail "direct call without the origin secret: $resp"
fi

# Body limits: an event over 6 MB is refused by Lambda (at the front door);
# a body over the functions' 4 MiB cap by the function, with advice.
head -c $((5 << 20)) /dev/urandom >"$work/5mib"
head -c $(((4 << 20) + (256 << 10))) /dev/urandom >"$work/4.25mib"
st="$(curl_status "${basic[@]}" -X POST -D "$work/headers" "http://$addr/v2/e2e/limits/blobs/uploads/")"
location="$(sed -n 's/^[Ll]ocation: *\(.*\)\r$/\1/p' "$work/headers")"
if [[ "$st" != 202 || -z "$location" ]]; then
	fail "POST upload session: $st"
else
	[[ "$location" == http* ]] || location="http://$addr$location"
	st="$(curl_status "${basic[@]}" -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @"$work/5mib" "$location")"
	if [[ "$st" == 413 ]] && grep -q 'Request must be smaller than' "$work/body"; then
		log "ok: a 5 MiB PATCH (6.7 MB as base64) is refused by Lambda's payload limit: 413"
	else
		fail "5 MiB PATCH: $st $(head -c 300 "$work/body"), want 413 from the front door"
	fi
	st="$(curl_status "${basic[@]}" -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @"$work/4.25mib" "$location")"
	if [[ "$st" == 413 ]] && grep -q 'SIZE_INVALID' "$work/body"; then
		log "ok: a 4.25 MiB PATCH is refused by the function's body cap: 413 SIZE_INVALID"
	else
		fail "4.25 MiB PATCH: $st $(head -c 300 "$work/body"), want 413 SIZE_INVALID from the function"
	fi
fi

# ---- 6. conformance
conformance_env=(OCI_API_BLOBS_DIGEST_HEADER=false OCI_DATA_SHA512=true CONFORMANCE_LABEL=lambda)
if [[ "$auth" == true ]]; then conformance_env+=(OCI_USERNAME="$user" OCI_PASSWORD="$password"); fi
if ! env "${conformance_env[@]}" scripts/conformance.sh "$addr"; then
	fail "OCI conformance through the front door (results/conformance/lambda/)"
fi

# ---- 7. real clients
clients=()
# step NAME CMD...: runs one client step, output in results/e2e-lambda/clients/NAME.log.
step() {
	local name="$1"
	shift
	if "$@" >"$out/clients/$name.log" 2>&1; then
		clients+=("ok    $name")
		return 0
	fi
	clients+=("FAIL  $name (results/e2e-lambda/clients/$name.log)")
	fail "client step $name: $(tail -n 3 "$out/clients/$name.log" | tr '\n' ' ')"
	return 1
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
	clients+=("FAIL  $name: failed, but not with 413 (results/e2e-lambda/clients/$name.log)")
	fail "client step $name failed without a 413: $(tail -n 3 "$out/clients/$name.log" | tr '\n' ' ')"
}
same() { [[ "$1" == "$2" ]] || { echo "digest mismatch: $1 != $2"; return 1; }; }

export HOME="$work/home" DOCKER_CONFIG="$work/home/.docker" REGISTRY_AUTH_FILE="$work/home/auth.json"
mkdir -p "$HOME" "$DOCKER_CONFIG"
printf 'unqualified-search-registries = []\n' >"$work/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf" NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
src_creds=()
dest_creds=()
if [[ "$auth" == true ]]; then
	src_creds=(--src-creds "$user:$password")
	dest_creds=(--dest-creds "$user:$password")
	crane auth login "$addr" -u "$user" -p "$password" >/dev/null 2>&1 || fail "crane auth login"
	printf '%s\n' "$password" | oras login --plain-http -u "$user" --password-stdin "$addr" >/dev/null 2>&1 || fail "oras login"
fi
regctl registry set "$addr" --tls disabled --blob-chunk $((4 << 20)) --blob-max $((4 << 20)) >/dev/null
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
step crane crane_flow || true
step regctl-chunked regctl_flow || true
step oras oras_flow || true
step skopeo skopeo_flow || true
# Pushes from outside that send a 12 MiB layer in one request.
must_refuse crane-push-12MiB crane push --insecure "$work/big-image.tar" "$addr/e2e/crane-big:v1" || true
must_refuse oras-push-12MiB bash -c "cd '$work/big' && oras push --no-tty --plain-http '$addr/e2e/oras-big:v1' data.bin:application/octet-stream" || true
must_refuse skopeo-push-12MiB skopeo copy --dest-tls-verify=false "${dest_creds[@]}" \
	"docker-archive:$work/big-image.tar" "docker://$addr/e2e/skopeo-archive:v1" || true

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
		rie_ms="$(sed -n 's/.*INIT REPORT(durationMs: \([0-9]*\.[0-9]\)[0-9]*).*/\1/p' "$f" | head -n 1)"
		first_ms="$(grep -m1 "\"instance\":\"${inst%-*}/${inst##*-}\"" "$out/lambdafront.log" | sed -n 's/.*"dur_ms":\([0-9]*\).*/\1/p')"
		printf '%-12s %8s %8s %12s %17s\n' "$inst" "${init_ms:-?}" "${main_ms:-?}" "${rie_ms:-?}" "${first_ms:-?}"
	done
	echo "init_ms: the function's own measure, process start to ready (10 ms resolution); main_ms: main() to ready;"
	echo "rie_init_ms: the emulator's INIT REPORT (runtime start to its first /next); first_request_ms: the front"
	echo "door's duration of the instance's first request, init included. Local stand-ins, no Secrets Manager:"
	echo "a deployed cold start adds the sandbox, the zip, three GetSecretValue calls and real network round trips."
	echo
	echo "== OCI conformance through the front door"
	cat "$root/results/conformance/lambda/summary.txt" 2>/dev/null || echo "[lambda] no summary"
	echo
	echo "== real clients through the front door (body limit: ${SKIFF_MAX_BODY:-4194304} bytes)"
	printf '%s\n' "${clients[@]}"
	echo "test/integration: not run against the harness (it starts its own skiff serve; it has no hook for an external registry)"
	echo
	echo "== requests per function (lambdafront.log)"
	for fn in manifest blob catalog; do
		printf '%-9s %6d\n' "$fn" "$(grep -c "\"fn\":\"$fn\"" "$out/lambdafront.log" || true)"
	done
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
