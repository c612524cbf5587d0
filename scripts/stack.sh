#!/usr/bin/env bash
# The whole AWS-shaped stack on this machine, in the foreground, for a person
# or a test to use: the stand-ins (dynalite, the S3 stand-in), the three
# Lambda functions under the Runtime Interface Emulator, the front door
# (tools/lambdafront, CloudFront's stand-in) and the ingest service
# (`skiff serve --ingest`, the ECS service's binary, as a plain process), an
# admin user. `make stack` runs it.
#
#   scripts/stack.sh
#
# Once everything answers it writes, to SKIFF_STACK_ENV (default ./stack.env):
#
#   REGISTRY=127.0.0.1:PORT     the front door (plain HTTP)
#   ADMIN_USER=... ADMIN_PASSWORD=...
#   STACK_INGEST=1|0            whether uploads go to the ingest service
#   INGEST=127.0.0.1:PORT       the ingest service itself (with STACK_INGEST=1)
#   STACK_LOGS=DIR              lambdafront's and every process's logs
#
# and prints "stack: ready". It stops everything on SIGINT or SIGTERM (and the
# env file is removed).
#
# Env: STACK_INGEST=0 runs pure Lambda (uploads to the blob function, with the
# functions' 4 MiB body cap and the front door's 413 advice); STACK_ADDR
# (default 127.0.0.1:0: any free port) the front door's address; STACK_POOL
# (default 2) emulators per function; STACK_LOGS (default results/stack) where
# the logs go; STACK_SKIP_BUILD=1 reuses the binaries in STACK_BIN (CI's
# second run); SKIFF_AUTH=false runs without authentication; STACK_REALM=forwarded
# sets no SKIFF_REALM (the functions derive it from X-Forwarded-Host, as in a
# stack without a custom domain). The stand-ins
# are started unless AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_DYNAMODB are set.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'stack: %s\n' "$*" >&2; }

if [[ -z "${AWS_ENDPOINT_URL_S3:-}" || -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
	exec "$root/scripts/with-standins.sh" "$0" "$@"
fi

tools_dir="${TOOLS_DIR:-$root/.tools}"
bin_dir="$tools_dir/bin"
env_file="${SKIFF_STACK_ENV:-$root/stack.env}"
logs="${STACK_LOGS:-$root/results/stack}"
ingest="${STACK_INGEST:-1}"
pool="${STACK_POOL:-2}"
addr="${STACK_ADDR:-127.0.0.1:0}"
auth="${SKIFF_AUTH:-true}"
realm=true
if [[ "${STACK_REALM:-}" == forwarded ]]; then realm=false; fi
case "$ingest" in 0 | 1) ;; *) log "STACK_INGEST=$ingest: want 1 (the default) or 0"; exit 2 ;; esac

mkdir -p "$logs/functions"
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-stack.XXXXXX")"
bin="${STACK_BIN:-$work/bin}"
pids=()
cleanup() {
	rm -f "$env_file"
	# The front door first (it stops its emulators), then the ingest service.
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'log "stopping"; exit 130' INT
trap 'log "stopping"; exit 143' TERM

# ---- builds: native bootstraps for the emulator, the front door, the CLI
[[ -x "$bin_dir/aws-lambda-rie" ]] || { log "ERROR: $bin_dir/aws-lambda-rie is missing: run make tools"; exit 1; }
if [[ "${STACK_SKIP_BUILD:-}" != 1 ]]; then
	log "building the functions (native, for the emulator), lambdafront, awsinit and skiff"
	mkdir -p "$bin"
	scripts/functions.sh --arch "$(go env GOARCH)" --out "$bin/functions" >"$logs/build.txt"
	GOFLAGS='' go build -o "$bin/lambdafront" ./tools/lambdafront
	GOFLAGS='' go build -o "$bin/awsinit" ./tools/awsinit
	GOFLAGS='' go build -o "$bin/skiff" ./cmd/skiff
fi

# ---- resources, the token key, an admin
suffix="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export SKIFF_S3_BUCKET="skiff-stack-$suffix" SKIFF_DYNAMODB_TABLE="skiff-stack-$suffix"
export SKIFF_AUTH_KEY_FILE="$work/token.key" LOG_LEVEL="${LOG_LEVEL:-info}"
"$bin/awsinit" -bucket "$SKIFF_S3_BUCKET" -table "$SKIFF_DYNAMODB_TABLE" -key-file "$SKIFF_AUTH_KEY_FILE" >&2
user=admin
password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$password" | "$bin/skiff" user add "$user" --admin --password-stdin --table "$SKIFF_DYNAMODB_TABLE" >/dev/null
secret="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"

# wait_for FILE PID WHAT: until FILE is non-empty, or fail if PID exits.
wait_for() {
	for _ in $(seq 1 600); do
		[[ -s "$1" ]] && return 0
		if ! kill -0 "$2" 2>/dev/null; then
			log "ERROR: $3 exited at start; its log:"
			tail -n 40 "$4" >&2
			exit 1
		fi
		sleep 0.1
	done
	log "ERROR: $3 not ready after 60 s"
	exit 1
}

# ---- the ingest service: the blob function's environment, no body cap.
# The realm comes from X-Forwarded-Host, which the front door sets.
ingest_flag=()
if [[ "$ingest" == 1 ]]; then
	SKIFF_ORIGIN_SECRET="$secret" SKIFF_AUTH="$auth" "$bin/skiff" serve --ingest --addr 127.0.0.1:0 \
		>"$logs/ingest.log" 2>&1 &
	pids+=($!)
	ingest_pid=$!
	for _ in $(seq 1 600); do
		ingest_addr="$(sed -n 's/.*"msg":"serving","addr":"\([^"]*\)".*/\1/p' "$logs/ingest.log" | head -n 1)"
		[[ -n "$ingest_addr" ]] && break
		kill -0 "$ingest_pid" 2>/dev/null || { log "ERROR: the ingest service exited:"; cat "$logs/ingest.log" >&2; exit 1; }
		sleep 0.1
	done
	[[ -n "$ingest_addr" ]] || { log "ERROR: the ingest service did not start"; exit 1; }
	ingest_flag=(-ingest "http://$ingest_addr")
fi

# ---- the front door and the functions
"$bin/lambdafront" -functions "$bin/functions" -pool "$pool" -log-dir "$logs/functions" -addr "$addr" \
	-addr-file "$work/addr" -auth="$auth" -realm="$realm" -origin-secret "$secret" -rie "$bin_dir/aws-lambda-rie" "${ingest_flag[@]}" \
	>"$logs/lambdafront.out" 2>"$logs/lambdafront.log" &
pids=("$!" "${pids[@]}")
wait_for "$work/addr" "${pids[0]}" lambdafront "$logs/lambdafront.log"
front="$(cat "$work/addr")"

{
	printf 'REGISTRY=%s\n' "$front"
	printf 'ADMIN_USER=%s\nADMIN_PASSWORD=%s\n' "$user" "$password"
	printf 'STACK_INGEST=%s\n' "$ingest"
	if [[ "$ingest" == 1 ]]; then printf 'INGEST=%s\n' "$ingest_addr"; fi
	printf 'STACK_LOGS=%s\n' "$logs"
} >"$env_file.tmp"
mv "$env_file.tmp" "$env_file"
mode="pure Lambda: uploads to the blob function, 4 MiB per request"
if [[ "$ingest" == 1 ]]; then mode="uploads to the ingest service at $ingest_addr"; fi
log "ready: http://$front ($mode); $user's password and the rest in $env_file; logs in $logs; Ctrl-C stops it"
echo "stack: ready"
while :; do
	for pid in "${pids[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "ERROR: a process of the stack exited (pid $pid); logs in $logs"
			exit 1
		fi
	done
	sleep 1
done
