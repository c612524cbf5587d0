#!/usr/bin/env bash
# Builds Skiff's Lambda functions (functions/manifest, functions/blob,
# functions/catalog, the scheduled collector functions/gc and the sync functions/sync) as `bootstrap` binaries for the provided.al2023 runtime.
#
#   scripts/functions.sh                        arm64 (the stack's architecture):
#                                               build/functions/<fn>.zip, each with
#                                               bootstrap at its root; prints sizes
#   scripts/functions.sh --arch amd64 --out DIR native binaries for the local
#                                               harness: DIR/<fn>/bootstrap, no zips
#
# Options: --arch arm64|amd64 (default arm64), --out DIR (default build/functions),
# --no-zip (binaries only; the default with --arch amd64), --zip (force zips).
# Binaries are static (CGO_ENABLED=0), built with -tags lambda.norpc (no legacy
# RPC runtime), -trimpath, -buildvcs=false (no commit stamp: the bytes depend
# on the source alone) and -ldflags "-s -w". Zips are reproducible
# (tools/fnzip: fixed dates), so the CDK asset hash only moves with the code.
# With --arch arm64 (the default) it also builds the ingest service's image
# context: build/ingest/skiff (cmd/skiff, the same flags) and
# build/ingest/Dockerfile (infra/ingest/Dockerfile); INGEST_OUT moves it.
# Make target: `make functions` (the CDK app reads build/functions/*.zip and
# build/ingest).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'functions.sh: %s\n' "$*" >&2; }

arch=arm64
out=""
zip=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--arch) arch="${2:?--arch needs arm64 or amd64}"; shift 2 ;;
	--arch=*) arch="${1#--arch=}"; shift ;;
	--out) out="${2:?--out needs a directory}"; shift 2 ;;
	--out=*) out="${1#--out=}"; shift ;;
	--zip) zip=1; shift ;;
	--no-zip) zip=0; shift ;;
	*) log "usage: scripts/functions.sh [--arch arm64|amd64] [--out DIR] [--zip|--no-zip]"; exit 2 ;;
	esac
done
case "$arch" in
arm64 | amd64) ;;
*) log "ERROR: --arch $arch: want arm64 or amd64"; exit 2 ;;
esac
out="${out:-$root/build/functions}"
if [[ -z "$zip" ]]; then
	# The deployable artefact is the arm64 zip; the harness runs binaries.
	if [[ "$arch" == arm64 ]]; then zip=1; else zip=0; fi
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"

fns=(manifest blob catalog gc sync)
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-functions.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ "$zip" == 1 ]]; then
	# The zipper runs here, so it is built for this machine.
	GOFLAGS='' go build -o "$work/fnzip" ./tools/fnzip
fi

start=$SECONDS
for fn in "${fns[@]}"; do
	mkdir -p "$out/$fn"
	# GOFLAGS cleared: a caller's -race (which needs cgo) must not leak in.
	GOFLAGS='' GOOS=linux GOARCH="$arch" CGO_ENABLED=0 \
		go build -tags lambda.norpc -trimpath -buildvcs=false -ldflags "-s -w" -o "$out/$fn/bootstrap" "./functions/$fn"
done
log "built ${fns[*]} for linux/$arch in $((SECONDS - start))s into $out"
if [[ "$arch" == arm64 && "$zip" == 1 ]]; then
	ingest="${INGEST_OUT:-$root/build/ingest}"
	mkdir -p "$ingest"
	GOFLAGS='' GOOS=linux GOARCH=arm64 CGO_ENABLED=0 \
		go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$ingest/skiff" ./cmd/skiff
	cp infra/ingest/Dockerfile "$ingest/Dockerfile"
	log "built the ingest image context (skiff for linux/arm64, Dockerfile) into $ingest"
fi

size() { stat -c %s "$1"; }
human() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

for fn in "${fns[@]}"; do
	bin="$out/$fn/bootstrap"
	if [[ "$zip" == 1 ]]; then
		"$work/fnzip" "$out/$fn.zip" "$bin"
		printf '%-8s linux/%s  bootstrap %9d bytes (%s)  %s.zip %9d bytes (%s)\n' "$fn" "$arch" \
			"$(size "$bin")" "$(human "$(size "$bin")")" "$fn" "$(size "$out/$fn.zip")" "$(human "$(size "$out/$fn.zip")")"
	else
		printf '%-8s linux/%s  bootstrap %9d bytes (%s)  %s\n' "$fn" "$arch" "$(size "$bin")" "$(human "$(size "$bin")")" "$bin"
	fi
done
