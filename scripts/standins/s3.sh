#!/usr/bin/env bash
# Runs the S3 stand-in (tools/s3standin: gofakes3, in memory) in the
# background for tests and benchmarks.
#
#   scripts/standins/s3.sh start    build if needed, start, wait until it answers
#   scripts/standins/s3.sh stop     stop the one this script started
#   scripts/standins/s3.sh status   say whether it runs
#   scripts/standins/s3.sh env      print exports for the SDK: eval "$(scripts/standins/s3.sh env)"
#
# Env: S3_STANDIN_ADDR (default 127.0.0.1:9090), TOOLS_DIR (default <repo>/.tools),
# STANDINS_RUN_DIR (default $TOOLS_DIR/run). The binary goes to
# $TOOLS_DIR/bin/s3standin, the pid and log files to $STANDINS_RUN_DIR: give
# each concurrent user (scripts/with-standins.sh does) its own run dir and
# address, so one's stop can't end another's instance.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools_dir="${TOOLS_DIR:-$root/.tools}"
bin="$tools_dir/bin/s3standin"
run_dir="${STANDINS_RUN_DIR:-$tools_dir/run}"
pid_file="$run_dir/s3standin.pid"
log_file="$run_dir/s3standin.log"
addr="${S3_STANDIN_ADDR:-127.0.0.1:9090}"
url="http://$addr"

log() { printf 's3standin: %s\n' "$*" >&2; }

running_pid() {
	[[ -f "$pid_file" ]] || return 1
	local pid
	pid="$(cat "$pid_file")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

# answers: any HTTP response at all (gofakes3 lists buckets on GET /).
answers() { curl -s -o /dev/null --max-time 2 "$url/"; }

build() {
	# Rebuild only when a source is newer than the binary.
	if [[ -x "$bin" && -z "$(find "$root/tools/s3standin" "$root/go.mod" "$root/go.sum" -newer "$bin" -print -quit)" ]]; then
		return 0
	fi
	log "building $bin"
	mkdir -p "$(dirname "$bin")"
	# Clear GOFLAGS: a caller's -race must not leak into the tool.
	(cd "$root" && GOFLAGS= go build -o "$bin" ./tools/s3standin)
}

start() {
	if pid="$(running_pid)"; then
		log "already running (pid $pid) on $url"
		return 0
	fi
	if answers; then
		log "ERROR: something else already answers on $url (set S3_STANDIN_ADDR to use another address)"
		return 1
	fi
	build
	mkdir -p "$run_dir"
	nohup "$bin" -addr "$addr" >"$log_file" 2>&1 </dev/null &
	local pid=$!
	printf '%s\n' "$pid" >"$pid_file"
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "ERROR: exited at start; log follows"
			cat "$log_file" >&2
			rm -f "$pid_file"
			return 1
		fi
		if answers; then
			log "ready (pid $pid) on $url"
			return 0
		fi
		sleep 0.1
	done
	log "ERROR: no answer on $url after 10 s; stopping it"
	stop
	return 1
}

stop() {
	local pid
	if ! pid="$(running_pid)"; then
		log "not running"
		rm -f "$pid_file"
		return 0
	fi
	kill -TERM "$pid"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "still running after 10 s; killing pid $pid"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pid_file"
	log "stopped (pid $pid)"
}

status() {
	if pid="$(running_pid)"; then
		log "running (pid $pid) on $url"
	else
		log "not running"
		return 1
	fi
}

env_exports() {
	# The stand-in checks no credentials, but the SDK wants some.
	cat <<EOS
export AWS_ENDPOINT_URL_S3=$url
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
EOS
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
env) env_exports ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
