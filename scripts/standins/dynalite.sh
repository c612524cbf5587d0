#!/usr/bin/env bash
# Runs dynalite, the in-memory DynamoDB stand-in that the awsstore tests use
# (pinned in scripts/standins/package.json; no Docker, no Java needed).
#
#   scripts/standins/dynalite.sh start   install if needed, start in the
#                                        background, wait until it answers
#   scripts/standins/dynalite.sh stop    stop the instance this script started
#   scripts/standins/dynalite.sh env     print the exports the tests read:
#                                        eval "$(scripts/standins/dynalite.sh env)"
#   scripts/standins/dynalite.sh status  exit 0 if it answers
#
# Env: DYNALITE_PORT (default 8000), DYNALITE_HOST (default 127.0.0.1),
# DYNALITE_WAIT_S (default 30), TOOLS_DIR (default <repo>/.tools),
# STANDINS_RUN_DIR (default $TOOLS_DIR/run): the pid file and log live there.
# Give each concurrent user (scripts/with-standins.sh does) its own run dir
# and port, so one's stop can't end another's instance.
# Data is in memory only: a restart starts empty.
#
# dynalite has no transactions and no UpdateTimeToLive; awsstore needs
# neither (see internal/storage/awsstore/doc.go).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tools_dir="${TOOLS_DIR:-$root/.tools}"
run_dir="${STANDINS_RUN_DIR:-$tools_dir/run}"
pid_file="$run_dir/dynalite.pid"
log_file="$run_dir/dynalite.log"
host="${DYNALITE_HOST:-127.0.0.1}"
port="${DYNALITE_PORT:-8000}"
wait_s="${DYNALITE_WAIT_S:-30}"
endpoint="http://$host:$port"

log() { printf 'dynalite.sh: %s\n' "$*" >&2; }

# answers reports whether something speaking the DynamoDB JSON protocol
# listens on the endpoint. dynalite wants an Authorization header but never
# checks the signature, so a dummy one gets ListTables answered.
answers() {
	curl -sS --max-time 2 -X POST "$endpoint/" \
		-H 'Content-Type: application/x-amz-json-1.0' \
		-H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
		-H 'X-Amz-Date: 20200101T000000Z' \
		-H 'Authorization: AWS4-HMAC-SHA256 Credential=skiff-dummy/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
		-d '{}' 2>/dev/null | grep '"TableNames"' >/dev/null
}

running_pid() {
	[[ -f "$pid_file" ]] || return 1
	local pid
	pid="$(cat "$pid_file")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

install() {
	if [[ -x "$here/node_modules/.bin/dynalite" ]]; then
		return 0
	fi
	command -v npm >/dev/null 2>&1 || { log "ERROR: npm not found; install Node.js 20+"; return 1; }
	log "installing dynalite into $here/node_modules"
	# npm ci installs exactly the lock file; fall back to install if the
	# lock file is missing or out of step with package.json.
	(cd "$here" && { npm ci --no-audit --no-fund --loglevel=error ||
		npm install --no-audit --no-fund --loglevel=error; }) >&2
}

start() {
	if pid="$(running_pid)"; then
		if answers; then
			log "already running (pid $pid) on $endpoint"
			return 0
		fi
		log "pid $pid from $pid_file does not answer; restarting it"
		stop
	fi
	if answers; then
		log "ERROR: something not started by this script already answers on $endpoint;"
		log "       stop it or set DYNALITE_PORT"
		return 1
	fi
	install
	mkdir -p "$run_dir"
	# Run the package's command line directly rather than through npx: npx
	# would be the recorded pid and `stop` would leave its node child
	# running. dynalite-server.js keeps it alive when a client aborts a
	# request (see there). setsid detaches it from this shell's process
	# group and terminal, and the closed stdin/redirected output let the
	# caller's pipes close.
	setsid node "$here/dynalite-server.js" --host "$host" --port "$port" \
		</dev/null >"$log_file" 2>&1 &
	echo $! >"$pid_file"
	local deadline=$((SECONDS + wait_s))
	until answers; do
		if ! running_pid >/dev/null; then
			log "ERROR: dynalite exited; log ($log_file):"
			cat "$log_file" >&2 || true
			rm -f "$pid_file"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			log "ERROR: dynalite did not answer on $endpoint within ${wait_s}s; log ($log_file):"
			cat "$log_file" >&2 || true
			stop
			return 1
		fi
		sleep 0.2
	done
	log "started (pid $(cat "$pid_file")) on $endpoint"
}

stop() {
	local pid
	if ! pid="$(running_pid)"; then
		rm -f "$pid_file"
		log "not running"
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid ignored SIGTERM; sending SIGKILL"
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$pid_file"
	log "stopped (pid $pid)"
}

print_env() {
	# Dummy credentials: dynalite accepts any signature, but the SDK refuses
	# to sign without credentials and a region.
	cat <<EOF
export AWS_ENDPOINT_URL_DYNAMODB=$endpoint
export AWS_ACCESS_KEY_ID=skiff-dummy
export AWS_SECRET_ACCESS_KEY=skiff-dummy
export AWS_REGION=us-east-1
EOF
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) print_env ;;
status) answers ;;
*)
	log "usage: $0 start|stop|env|status"
	exit 2
	;;
esac
