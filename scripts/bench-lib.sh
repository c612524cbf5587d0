# The benchmark scripts' shared set-up, sourced after they set $root:
# bench_setup NAME puts the pinned tools on PATH, makes $work (removed at
# exit, after every process in $pids is stopped) and $out_dir, and points
# HOME and the clients' settings into $work, Go's caches staying where they
# are. log prints a line prefixed with NAME.
bench_name="${bench_name:-bench}"
log() { printf '%s: %s\n' "$bench_name" "$*" >&2; }

bench_cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}

bench_setup() {
	bench_name="$1"
	out_dir="${BENCH_OUT:-$root/results/bench}"
	export PATH="${TOOLS_DIR:-$root/.tools}/bin:$PATH"
	work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-$1.XXXXXX")"
	pids=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	GOMODCACHE="$(go env GOMODCACHE)" GOCACHE="$(go env GOCACHE)"
	export GOMODCACHE GOCACHE HOME="$work/home" DOCKER_CONFIG="$work/home/.docker"
	mkdir -p "$HOME" "$out_dir"
}

# bench_stack INGEST LOGS starts the AWS-shaped stack (tools/stack, without
# authentication; INGEST 1 with the ingest service, 0 pure Lambda), its
# logs in $out_dir/LOGS, and sets $front to its front door once it is up.
bench_stack() {
	GOFLAGS='' go build -o .tools/bin/stack ./tools/stack
	STACK_INGEST="$1" SKIFF_AUTH=false STACK_LOGS="$out_dir/$2" SKIFF_STACK_ENV="$work/stack.env" .tools/bin/stack >"$work/stack.out" 2>&1 &
	pids=("$!" "${pids[@]}")
	for _ in $(seq 1 1200); do
		[[ -s "$work/stack.env" ]] && break
		kill -0 "${pids[0]}" 2>/dev/null || { log "the stack did not start:"; cat "$work/stack.out" >&2; exit 1; }
		sleep 0.1
	done
	# shellcheck disable=SC1091
	. "$work/stack.env"
	front="$REGISTRY"
}
