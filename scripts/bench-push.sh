#!/usr/bin/env bash
# Push speed side by side: crane and skopeo push an image with one
# BENCH_LAYER_MIB (default 300) layer to `skiff serve` (embedded store) and
# to CNCF distribution (filesystem driver) on this machine, BENCH_PUSH_RUNS
# times each (default 5, interleaved; the best run counts, the median is
# shown beside it). Each run pushes a layer neither registry has seen, so
# neither finds it stored already, and starts once the disk has taken the
# writes of making that layer (sync): a fsyncing registry would otherwise
# wait for the harness's writes as well as its own. The figure is skiff's
# time / distribution's (issue 12: at most 1.0).
#
#   scripts/bench-push.sh        (`make bench` runs it after scripts/bench.sh)
#
# Results: results/bench/push.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
bench_setup bench-push

mib="${BENCH_LAYER_MIB:-300}"
runs="${BENCH_PUSH_RUNS:-5}"
for t in crane skopeo registry; do
	command -v "$t" >/dev/null || { log "$t is missing: make tools installs it"; exit 1; }
done

wait_port() { # NAME PORT LOG
	for _ in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	log "$1 did not start:"
	cat "$3" >&2
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/bin"
GOFLAGS='' go build -o "$work/bin/skiff" ./cmd/skiff
skiff_port="$(free_port)"
"$work/bin/skiff" serve --addr "127.0.0.1:$skiff_port" --data "$work/skiff-data" --log-level warn >"$work/skiff.log" 2>&1 &
pids+=($!)
wait_port "skiff serve" "$skiff_port" "$work/skiff.log"

dist_port="$(free_port)"
cat >"$work/distribution.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/distribution-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$dist_port
EOF
registry serve "$work/distribution.yml" >"$work/distribution.log" 2>&1 &
pids+=($!)
wait_port "distribution" "$dist_port" "$work/distribution.log"

# layout N: an OCI layout of an image with one fresh mib MiB layer.
layout() {
	local d="$work/layout-$1"
	mkdir -p "$d.src"
	head -c $((mib << 20)) /dev/urandom >"$d.src/data.bin"
	tar -C "$d.src" -cf "$d.tar" data.bin
	crane append --oci-empty-base -f "$d.tar" -t bench/seed:v1 -o "$d.image.tar" >/dev/null 2>&1
	skopeo copy -q "docker-archive:$d.image.tar" "oci:$d:v1" >/dev/null
	rm -rf "$d.src" "$d.tar" "$d.image.tar"
	sync # the layer's own writes are not part of a push
}
now() { date +%s.%N; }
push() { # CLIENT LAYOUT HOST REPO
	case "$1" in
	crane) crane push --insecure "$2" "$3/$4:v1" >/dev/null 2>>"$work/errors.log" ;;
	skopeo) skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$2:v1" "docker://$3/$4:v1" >/dev/null 2>>"$work/errors.log" ;;
	esac
}
timed() { # CLIENT LAYOUT HOST REPO: seconds for one push
	local s e
	s="$(now)"
	push "$@" || { log "$1 push to $3 failed:"; tail -n 5 "$work/errors.log" >&2; exit 1; }
	e="$(now)"
	echo "$e - $s" | bc
}
best() { printf '%s\n' "$@" | sort -g | head -n1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
{
	echo "## Push speed: skiff serve vs CNCF distribution (filesystem), this machine"
	echo
	echo "One image with a fresh $mib MiB layer per run, pushed from an OCI layout, $runs runs each (interleaved, the order alternating), best run and (median), $(date -u +%Y-%m-%d); distribution $(registry --version 2>/dev/null | awk '{print $NF}' | head -n1)."
	echo
	echo "| client | skiff serve (embedded) | distribution (filesystem) | ratio skiff / distribution (<= 1.0) |"
	echo "|---|---|---|---|"
	n=0
	for client in crane skopeo; do
		xs=() ys=()
		for i in $(seq 1 "$runs"); do
			n=$((n + 1))
			layout "$n"
			if ((i % 2)); then
				x="$(timed "$client" "$work/layout-$n" "127.0.0.1:$skiff_port" "bench/$client-$i")"
				y="$(timed "$client" "$work/layout-$n" "127.0.0.1:$dist_port" "bench/$client-$i")"
			else
				y="$(timed "$client" "$work/layout-$n" "127.0.0.1:$dist_port" "bench/$client-$i")"
				x="$(timed "$client" "$work/layout-$n" "127.0.0.1:$skiff_port" "bench/$client-$i")"
			fi
			rm -rf "$work/layout-$n"
			log "$client run $i: skiff $x s, distribution $y s"
			xs+=("$x") ys+=("$y")
		done
		s="$(best "${xs[@]}")" d="$(best "${ys[@]}")" ms="$(median "${xs[@]}")" md="$(median "${ys[@]}")"
		printf '| %s | %.2f s (%.2f s), %.0f MiB/s | %.2f s (%.2f s), %.0f MiB/s | %.2f (%.2f) |\n' "$client" \
			"$s" "$ms" "$(echo "$mib / $s" | bc -l)" "$d" "$md" "$(echo "$mib / $d" | bc -l)" \
			"$(echo "$s / $d" | bc -l)" "$(echo "$ms / $md" | bc -l)"
	done
} | tee "$out_dir/push.md"
