#!/usr/bin/env bash
# Runs a command with the AWS stand-ins up, and stops them afterwards whatever
# happens (success, failure, ^C, SIGTERM):
#
#   scripts/with-standins.sh CMD [ARGS...]
#
# It starts dynalite (scripts/standins/dynalite.sh: npm, pinned; installed on
# first use) and the S3 stand-in (scripts/standins/s3.sh: gofakes3 in
# tools/s3standin; built on first use) side by side, exports what their `env`
# subcommands print (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB, dummy
# credentials, AWS_REGION) plus SKIFF_REQUIRE_STANDINS=1, runs CMD, stops
# both, and exits with CMD's status. `make test` runs its Go tests and
# conformance runs through it.
#
# Each run gets its own pid/log directory and, unless S3_STANDIN_ADDR or
# DYNALITE_PORT say otherwise, free loopback ports picked at random: an
# instance someone started by hand on 8000/9090 (pid files in .tools/run) is
# neither reused nor stopped. The stand-ins' logs are copied to
# results/standins/ at the end (STANDINS_LOG_DIR overrides).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
standins="$root/scripts/standins"

log() { printf 'with-standins: %s\n' "$*" >&2; }

if [[ $# -eq 0 ]]; then
	log "usage: scripts/with-standins.sh CMD [ARGS...]"
	exit 2
fi

# listening PORT: something accepts TCP connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a random loopback port nothing listens on. Another process could
# take it before the stand-in binds it: the start then fails, and is retried
# on other ports (below).
free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		if ! listening "$port"; then
			echo "$port"
			return 0
		fi
	done
	log "ERROR: no free port found"
	return 1
}

export STANDINS_RUN_DIR
STANDINS_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/skiff-standins.XXXXXX")"
# Ports the caller chose are kept; the others are picked at each attempt.
fixed_dynalite="${DYNALITE_PORT:-}"
fixed_s3="${S3_STANDIN_ADDR:-}"
export DYNALITE_PORT S3_STANDIN_ADDR
log_dir="${STANDINS_LOG_DIR:-$root/results/standins}"

stopped=""
stop_standins() {
	[[ -z "$stopped" ]] || return 0
	stopped=1
	# Stop both even if one stop fails.
	"$standins/s3.sh" stop || true
	"$standins/dynalite.sh" stop || true
	mkdir -p "$log_dir"
	cp "$STANDINS_RUN_DIR"/*.log "$log_dir/" 2>/dev/null || true
	rm -rf "$STANDINS_RUN_DIR"
}
trap stop_standins EXIT
# A signal ends the script through the EXIT trap; the command (in the same
# process group when run from a terminal or make) gets the signal too.
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
# A randomly picked port can be taken between the check and the bind (by
# anything else on the machine); then both stop and the next attempt picks
# other ports. Ports the caller fixed get one attempt.
attempts=3
if [[ -n "$fixed_dynalite" && -n "$fixed_s3" ]]; then attempts=1; fi
for attempt in $(seq 1 "$attempts"); do
	DYNALITE_PORT="${fixed_dynalite:-$(free_port)}"
	S3_STANDIN_ADDR="${fixed_s3:-127.0.0.1:$(free_port)}"
	log "starting dynalite on 127.0.0.1:$DYNALITE_PORT and the S3 stand-in on $S3_STANDIN_ADDR (attempt $attempt; pids, logs: $STANDINS_RUN_DIR)"
	# Side by side: the first run installs dynalite (npm) and builds s3standin (go).
	"$standins/dynalite.sh" start &
	dyn_job=$!
	"$standins/s3.sh" start &
	s3_job=$!
	rc=0
	wait "$dyn_job" || { rc=$?; log "ERROR: dynalite did not start (exit $rc)"; }
	wait "$s3_job" || { rc=$?; log "ERROR: the S3 stand-in did not start (exit $rc)"; }
	if [[ $rc -eq 0 ]]; then
		break
	fi
	"$standins/s3.sh" stop || true
	"$standins/dynalite.sh" stop || true
	if [[ $attempt -eq $attempts ]]; then
		exit "$rc"
	fi
done
log "stand-ins up in $((SECONDS - start))s"

eval "$("$standins/dynalite.sh" env)"
eval "$("$standins/s3.sh" env)"
# The Go tests that need a stand-in fail instead of skipping without one.
export SKIFF_REQUIRE_STANDINS=1
log "AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL_S3 AWS_REGION=$AWS_REGION"

set +e
"$@"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
	log "command exited $rc: $*"
	for f in "$STANDINS_RUN_DIR"/*.log; do
		[[ -s "$f" ]] || continue
		log "last lines of $(basename "$f"):"
		tail -n 20 "$f" >&2 || true
	done
fi
exit "$rc"
