#!/usr/bin/env bash
# Reproduces, without Skiff, the regctl digest mismatch seen through Skiff's
# pure-Lambda front door: regctl (default settings) copies an image with a
# large layer from one CNCF distribution registry to another that sits behind
# a proxy answering 413 at once to any body over 4 MiB (tools/early413, what
# a front door with a body cap does). regctl's whole-layer PUT gets the 413,
# it seeks its source back and falls back to chunks, while Go's HTTP
# transport may still be reading the failed PUT's body from the same reader:
# the bytes it takes are missing from the chunks (docs/clients.md).
#
#   scripts/repro-regctl-413.sh [RUNS] [LAYER_MIB]     (default 20 runs, 300 MiB)
#
# Prints one line per run and a count; exits 0 either way (it is a
# reproduction, not a test).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs="${1:-20}"
mib="${2:-300}"
export PATH="$root/.tools/bin:$PATH"
work="$(mktemp -d "${TMPDIR:-/tmp}/repro-413.XXXXXX")"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
export HOME="$work/home" DOCKER_CONFIG="$work/home/.docker"
mkdir -p "$HOME"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_distribution() {
	local p="$1" dir="$2"
	mkdir -p "$dir"
	cat >"$dir/config.yml" <<YAML
version: 0.1
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$p}
log: {level: error}
YAML
	registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
	pids+=($!)
}
src="$(port)" dst="$(port)"
start_distribution "$src" "$work/src"
start_distribution "$dst" "$work/dst"
go build -o "$work/early413" ./tools/early413
"$work/early413" -to "http://127.0.0.1:$dst" -addr-file "$work/proxy" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/proxy" ]] && curl -sf "http://127.0.0.1:$src/v2/" >/dev/null && break; sleep 0.1; done
proxy="$(cat "$work/proxy")"

mkdir -p "$work/layer"
head -c $((mib << 20)) /dev/urandom >"$work/layer/data.bin"
tar -C "$work/layer" -cf "$work/layer.tar" data.bin
crane append --insecure --oci-empty-base -f "$work/layer.tar" -t "127.0.0.1:$src/src/big:v1" >/dev/null 2>&1
regctl registry set --tls disabled "127.0.0.1:$src" >/dev/null 2>&1
regctl registry set --tls disabled "$proxy" >/dev/null 2>&1
want="$(regctl image digest "127.0.0.1:$src/src/big:v1")"
echo "regctl $(regctl version --format '{{.VCSTag}}'), $mib MiB layer, distribution $(registry --version 2>/dev/null | awk '{print $3}') behind an early 413 at $proxy"
bad=0
for i in $(seq 1 "$runs"); do
	if out="$(regctl image copy "127.0.0.1:$src/src/big:v1" "$proxy/run$i/big:v1" 2>&1)" &&
		[[ "$(regctl image digest "$proxy/run$i/big:v1")" == "$want" ]]; then
		echo "run $i: ok"
	else
		bad=$((bad + 1))
		echo "run $i: FAILED: $(grep -o 'digest mismatch[^"]*' <<<"$out" | head -n 1)"
	fi
done
echo "$bad of $runs runs failed"
