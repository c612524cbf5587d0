#!/usr/bin/env bash
# Push throughput through the AWS-shaped stack's front door with the ingest
# service, against `skiff serve --backend aws` on the same stand-ins: crane
# and skopeo push an image with one BENCH_LAYER_MIB (default 300) layer to
# each, BENCH_INGEST_RUNS times (default 3; the best run counts), and the
# ratio front door / direct is the figure issue 10 asks for (>= 0.8).
#
#   scripts/bench-ingest.sh       (`make bench` runs it after scripts/bench.sh)
#
# Both sides run without authentication (the token round trips are the same
# on both and not what is measured). Results: results/bench/ingest.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
bench_name=bench-ingest

if [[ -z "${AWS_ENDPOINT_URL_S3:-}" || -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
	exec "$root/scripts/with-standins.sh" "$0" "$@"
fi
mib="${BENCH_LAYER_MIB:-300}"
runs="${BENCH_INGEST_RUNS:-3}"
bench_setup bench-ingest

# The direct server: skiff serve --backend aws on a bucket and table of its own.
mkdir -p "$work/bin"
GOFLAGS='' go build -o "$work/bin/skiff" ./cmd/skiff
suffix="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
SKIFF_S3_BUCKET="skiff-bench-$suffix" SKIFF_DYNAMODB_TABLE="skiff-bench-$suffix" \
	"$work/bin/skiff" serve --backend aws --create-resources --addr 127.0.0.1:0 >"$work/direct.log" 2>&1 &
pids+=($!)
direct=""
for _ in $(seq 1 300); do
	direct="$(sed -n 's/.*"msg":"serving","addr":"\([^"]*\)".*/\1/p' "$work/direct.log" | head -n 1)"
	[[ -n "$direct" ]] && break
	sleep 0.1
done
[[ -n "$direct" ]] || { log "skiff serve did not start:"; cat "$work/direct.log" >&2; exit 1; }

# The stack, with the ingest service.
bench_stack 1 ingest-stack

# The image, once, as an OCI layout both clients push from as it is (no
# registry involved, so no client knows its blobs anywhere yet).
mkdir -p "$work/layer"
head -c $((mib << 20)) /dev/urandom >"$work/layer/data.bin"
tar -C "$work/layer" -cf "$work/layer.tar" data.bin
crane append --oci-empty-base -f "$work/layer.tar" -t bench/seed:v1 -o "$work/image.tar" >/dev/null 2>&1
# (skopeo writes OCI media types, which its oci: transport reads back.)
skopeo copy -q "docker-archive:$work/image.tar" "oci:$work/layout:v1" >/dev/null
layer="$(python3 -c 'import json,sys
d=sys.argv[1]; idx=json.load(open(d+"/index.json"))
m=json.load(open(d+"/blobs/"+idx["manifests"][0]["digest"].replace(":","/")))
print(m["layers"][0]["digest"])' "$work/layout")"

now() { date +%s.%N; }
push() { # CLIENT HOST REPO
	case "$1" in
	crane) crane push --insecure "$work/layout" "$2/$3:v1" >/dev/null 2>>"$work/errors.log" ;;
	skopeo) skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$work/layout:v1" "docker://$2/$3:v1" >/dev/null 2>>"$work/errors.log" ;;
	esac
}
# forget HOST REPO: deletes the pushed layer from the repository, so the
# next push uploads it again: skopeo's blob info cache (shared by every root
# skopeo) would otherwise mount it from here instead.
forget() {
	curl -sf -X DELETE "http://$1/v2/$2/blobs/$layer" >/dev/null || { log "could not delete $layer from $2"; exit 1; }
}
timed() { # CLIENT HOST LABEL: seconds for one push to a new repository
	local s e repo="bench/$3-$1-$suffix"
	s="$(now)"
	push "$1" "$2" "$repo" || { log "$1 push to $2 failed:"; tail -n 5 "$work/errors.log" >&2; grep -h "\"status\":5" "$out_dir"/ingest-stack/ingest.log "$work/direct.log" | tail -n 3 >&2; exit 1; }
	e="$(now)"
	forget "$2" "$repo"
	echo "$e - $s" | bc
}
{
	echo "## Push throughput: front door with the ingest service vs skiff serve --backend aws"
	echo
	echo "One image with a $mib MiB layer, pushed from an OCI layout as it is, best of $runs runs each (interleaved), same stand-ins, $(date -u +%Y-%m-%d)."
	echo
	echo "| client | skiff serve --backend aws | front door + ingest | ratio (>= 0.8) |"
	echo "|---|---|---|---|"
	for client in crane skopeo; do
		# Interleaved, so that drift on the machine hits both sides alike.
		d="" f=""
		for i in $(seq 1 "$runs"); do
			x="$(timed "$client" "$direct" "direct-$i")"
			y="$(timed "$client" "$front" "front-$i")"
			if [[ -z "$d" ]] || (($(echo "$x < $d" | bc))); then d="$x"; fi
			if [[ -z "$f" ]] || (($(echo "$y < $f" | bc))); then f="$y"; fi
		done
		printf '| %s | %.2f s (%.0f MiB/s) | %.2f s (%.0f MiB/s) | %.2f |\n' "$client" "$d" "$(echo "$mib / $d" | bc -l)" \
			"$f" "$(echo "$mib / $f" | bc -l)" "$(echo "$d / $f" | bc -l)"
	done
} | tee "$out_dir/ingest.md"
