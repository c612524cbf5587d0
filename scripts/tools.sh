#!/usr/bin/env bash
# Installs the pinned client tools that the integration tests and the
# conformance run drive (and the upstream registry of the partial-mirror test): into <repo>/.tools/bin with `go install`, plus skopeo
# and podman from Debian (apt-get, as root). Idempotent: a tool whose stamp names the pinned version and whose
# binary is present is skipped, so a second run costs well under a second.
#
# Env: TOOLS_DIR (default <repo>/.tools), APT_MAX_AGE_MIN (default 360): skip
# `apt-get update` when the package lists are younger than this;
# TOOLS_NO_APT=1: the Go tools only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${TOOLS_DIR:-$root/.tools}"
bin_dir="$tools_dir/bin"
stamp_dir="$tools_dir/stamps"
mkdir -p "$bin_dir" "$stamp_dir"

# name|module path@version. Bump a version here and the next run reinstalls it.
pins=(
	"conformance|github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"
	"crane|github.com/google/go-containerregistry/cmd/crane@v0.22.1"
	"regctl|github.com/regclient/regclient/cmd/regctl@v0.11.7"
	"oras|oras.land/oras/cmd/oras@v1.3.6"
	# The upstream of the partial-mirror test (test/integration/mirror_test.go),
	# run in memory.
	"registry|github.com/distribution/distribution/v3/cmd/registry@v3.0.0"
	# Signs and verifies the mirrored index there (a local key pair, no
	# transparency log). The latest v2 the module proxy serves; the first
	# install builds it from source: 2 min 25 s on the 2-core machine with
	# cold module and build caches, once.
	"cosign|github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5"
	# make test's Go test runner: the count of tests run, a line per package.
	"gotestsum|gotest.tools/gotestsum@v1.13.0"
	# The Lambda runtime interface emulator the stack runs the functions under.
	"aws-lambda-rie|github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"
)

log() { printf 'tools: %s\n' "$*" >&2; }

install_go_tool() {
	local name="$1" pkg="$2"
	local stamp="$stamp_dir/$name"
	if [[ -x "$bin_dir/$name" && -f "$stamp" && "$(cat "$stamp")" == "$pkg" ]]; then
		log "$name up to date ($pkg)"
		return 0
	fi
	log "installing $name ($pkg)"
	rm -f "$stamp"
	# Clear GOFLAGS: a caller's -race or -mod=vendor must not leak into the tools.
	GOBIN="$bin_dir" GOFLAGS= go install "$pkg"
	printf '%s\n' "$pkg" >"$stamp"
}

for pin in "${pins[@]}"; do
	install_go_tool "${pin%%|*}" "${pin#*|}"
done

# install_apt NAME [APT FLAGS...]: a client tool from Debian (skopeo, podman),
# installed with apt-get when it is missing and this is root. There is no
# stamp: the version is Debian's, and presence on PATH is the check.
install_apt() {
	local name="$1"
	shift
	if command -v "$name" >/dev/null 2>&1; then
		log "$name present ($("$name" --version 2>/dev/null || echo unknown version))"
		return 0
	fi
	if [[ "$(id -u)" != "0" ]]; then
		log "ERROR: $name is not on PATH and this is not root, so it can't be installed here."
		log "       Install it (Debian/Ubuntu: sudo apt-get install -y $* $name) and re-run."
		return 1
	fi
	local lists=/var/lib/apt/lists max_age="${APT_MAX_AGE_MIN:-360}"
	# The lists dir always holds lock and partial/; a fresh update adds *_Packages files.
	if [[ -z "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin "-$max_age" -print -quit 2>/dev/null)" ]]; then
		log "apt-get update"
		apt-get update -qq
	else
		log "apt lists younger than ${max_age} min, skipping apt-get update"
	fi
	log "apt-get install $* $name"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" "$name" >/dev/null
	command -v "$name" >/dev/null 2>&1 || { log "ERROR: $name still missing after apt-get install"; return 1; }
	log "$name installed ($("$name" --version))"
}

# TOOLS_NO_APT=1: the Go tools only (make stack needs no skopeo or podman).
if [[ "${TOOLS_NO_APT:-}" == 1 ]]; then exit 0; fi
# Both are tried before the script fails, so one run reports every missing tool.
apt_failed=0
install_apt skopeo || apt_failed=1
# Push and pull only (vfs storage, no containers run): the recommends
# (fuse-overlayfs, slirp4netns, uidmap, ...) are for running containers.
install_apt podman --no-install-recommends || apt_failed=1
exit "$apt_failed"
