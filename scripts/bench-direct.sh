#!/usr/bin/env bash
# Large-blob throughput into the pure-Lambda stack (no ingest service):
# `skiff copy` by direct upload (the parts PUT to presigned S3 URLs, the
# blob function only hashing what arrived) against `regctl image copy`
# through the same front door in 4 MiB chunks (the largest body a function
# takes), for one image with a BENCH_DIRECT_MIB (default 1024) layer in a
# CNCF distribution upstream. One run each; the figure issue 13 asks for is
# direct / chunked throughput (>= 5). Results: results/bench/direct.md.
#
#   scripts/bench-direct.sh       (`make bench` runs it last)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
bench_name=bench-direct

if [[ -z "${AWS_ENDPOINT_URL_S3:-}" || -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
	exec "$root/scripts/with-standins.sh" "$0" "$@"
fi
mib="${BENCH_DIRECT_MIB:-1024}"
bench_setup bench-direct
mkdir -p "$work/bin"
GOFLAGS='' go build -o "$work/bin/skiff" ./cmd/skiff

# The upstream: CNCF distribution on the file system.
up_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
up="127.0.0.1:$up_port"
cat >"$work/upstream.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/upstream}}
http: {addr: $up, secret: bench-direct}
EOF
registry serve "$work/upstream.yml" >"$work/upstream.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://$up/v2/" >/dev/null && break; sleep 0.1; done

# The stack, pure Lambda.
bench_stack 0 direct-stack

# Two images in the upstream, one for each path, each one layer of random
# bytes (one copy per digest: the second path would find the first's).
mkdir -p "$work/layer"
for img in direct chunked; do
	head -c $((mib << 20)) /dev/urandom >"$work/layer/data.bin"
	tar -C "$work/layer" -cf "$work/layer.tar" data.bin
	crane append --insecure --oci-empty-base -f "$work/layer.tar" -t "$up/bench/$img:v1" >/dev/null 2>&1
done
rm -rf "$work/layer" "$work/layer.tar"
size="$(crane manifest --insecure "$up/bench/direct:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["size"])')"

regctl registry set --tls disabled "$up" >/dev/null
regctl registry set --tls disabled --blob-chunk 4194304 --blob-max 4194304 "$front" >/dev/null

now() { date +%s.%N; }
s="$(now)"
regctl image copy "$up/bench/chunked:v1" "$front/chunked/big:v1" >/dev/null 2>"$work/regctl.err" ||
	{ log "regctl image copy failed:"; cat "$work/regctl.err" >&2; exit 1; }
e="$(now)"
chunked_s="$(echo "$e - $s" | bc)"
s="$(now)"
"$work/bin/skiff" copy --insecure --json "$up/bench/direct:v1" "$front/direct/big" >"$work/copy.json" 2>"$work/copy.err" ||
	{ log "skiff copy failed:"; cat "$work/copy.err" >&2; exit 1; }
e="$(now)"
direct_s="$(echo "$e - $s" | bc)"
grep -q '"event":"blob-copied".*"note":"direct upload"' "$work/copy.json" || { log "skiff copy sent no blob by direct upload"; exit 1; }
for img in direct chunked; do
	got="$(crane digest --insecure "$front/$img/big:v1")"
	want="$(crane digest --insecure "$up/bench/$img:v1")"
	[[ "$got" == "$want" ]] || { log "$img/big:v1 is $got, the upstream $want"; exit 1; }
done
cp "$work/copy.json" "$out_dir/direct-copy.json"
{
	echo "## Large blobs into the pure-Lambda stack: direct upload vs chunked"
	echo
	echo "Two images, each with a $mib MiB layer ($size bytes compressed), in CNCF distribution, one copied by each path once through the front door (no ingest service), same stand-ins, $(date -u +%Y-%m-%d)."
	echo
	echo "| path | time | throughput |"
	echo "|---|---|---|"
	printf '| skiff copy, direct upload (parts to presigned URLs, the function hashes) | %.2f s | %.0f MiB/s |\n' "$direct_s" "$(echo "$size / 1048576 / $direct_s" | bc -l)"
	printf '| regctl image copy, 4 MiB chunks through the blob function | %.2f s | %.0f MiB/s |\n' "$chunked_s" "$(echo "$size / 1048576 / $chunked_s" | bc -l)"
	printf '\ndirect / chunked throughput: **%.1fx** (issue 13: >= 5)\n' "$(echo "$chunked_s / $direct_s" | bc -l)"
} | tee "$out_dir/direct.md"
