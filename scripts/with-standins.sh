#!/usr/bin/env bash
# scripts/with-standins.sh CMD [ARGS...]: CMD with the AWS stand-ins up
# (tools/standins: the S3 stand-in and dynalite on free ports, stopped
# afterwards whatever happens), for the scripts and the Makefile.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# GOFLAGS cleared: a caller's -race must not reach the tool.
(cd "$root" && GOFLAGS='' go build -o .tools/bin/standins ./tools/standins)
exec "$root/.tools/bin/standins" "$@"
