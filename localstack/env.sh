# shellcheck shell=bash
# Sourced by localstack/deploy.sh and localstack/test.sh (after they set
# root, the repository): the environment both run in, and helpers. Not
# executable on its own.
# The variables are for the scripts that source this file.
# shellcheck disable=SC2034
: "${root:?localstack/env.sh is sourced by deploy.sh and test.sh, which set root}"

# Only LocalStack, never an AWS account: no profile, no session, no config
# file, fixed test credentials and region. (LocalStack's default account is
# 000000000000 whatever the key; us-east-1 is in the Function URLs' names.)
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN \
	AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_LAMBDA AWS_ENDPOINT_URL_SECRETS_MANAGER \
	AWS_ENDPOINT_URL_CLOUDFORMATION AWS_ENDPOINT_URL_STS AWS_ENDPOINT_URL_IAM AWS_ENDPOINT_URL_SSM
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

# The gateway. Fixed port: the Function URLs and the presigned S3 URLs the
# functions hand out name 4566 (compose.yaml).
ls_port=4566
# For the Go tools here (skiff, lsinfo): straight to the published port.
ls_direct="http://127.0.0.1:$ls_port"
# For cdklocal and the clients following S3 redirects: the name LocalStack
# gives itself, which public DNS resolves to 127.0.0.1.
ls_domain=localhost.localstack.cloud
export AWS_ENDPOINT_URL="$ls_direct"

# The CDK CLI: no version check, no telemetry; jsii quiet about Node 20.
export CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

ls_here="$root/localstack"
ls_build="$ls_here/build"
compose_file="$ls_here/compose.yaml"
# The container compose.yaml starts (container_name).
ls_container=skiff-localstack

function_arch="${FUNCTION_ARCH:-arm64}"
case "$function_arch" in
arm64 | amd64) ;;
*)
	printf 'FUNCTION_ARCH=%s: want arm64 (the default) or amd64\n' "$function_arch" >&2
	exit 2
	;;
esac

# need CMD...: each command must be on PATH.
need() {
	local c missing=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		printf 'missing on PATH: %s\n' "${missing[*]}" >&2
		return 1
	fi
}

# compose ARGS...: Docker Compose v2, as a plugin or standalone.
compose() {
	if docker compose version >/dev/null 2>&1; then
		docker compose -f "$compose_file" "$@"
	elif command -v docker-compose >/dev/null 2>&1; then
		docker-compose -f "$compose_file" "$@"
	else
		printf 'Docker Compose not found: install the compose plugin (docker compose) or docker-compose\n' >&2
		return 1
	fi
}

# engine_arch: the Docker engine's architecture, as Go names it.
engine_arch() {
	case "$(docker info --format '{{.Architecture}}' 2>/dev/null)" in
	x86_64 | amd64) echo amd64 ;;
	aarch64 | arm64) echo arm64 ;;
	*) echo unknown ;;
	esac
}

# check_function_arch: can the engine run FUNCTION_ARCH's bootstraps? The
# stack declares arm64; LocalStack runs an arm64 function in an arm64
# container, which an amd64 engine runs only under QEMU emulation
# (binfmt_misc). FUNCTION_ARCH=amd64 deploys amd64 bootstraps instead, run
# natively on an amd64 engine with LAMBDA_IGNORE_ARCHITECTURE=1.
# LOCALSTACK_SKIP_ARCH_CHECK=1 skips this.
check_function_arch() {
	[[ "${LOCALSTACK_SKIP_ARCH_CHECK:-}" == 1 ]] && return 0
	local engine
	engine="$(engine_arch)"
	if [[ "$function_arch" == amd64 && "$engine" == arm64 ]]; then
		printf 'FUNCTION_ARCH=amd64 on an arm64 Docker engine: the arm64 default runs natively there; unset FUNCTION_ARCH\n' >&2
		return 1
	fi
	if [[ "$function_arch" == arm64 && "$engine" == amd64 ]]; then
		# Docker Desktop (macOS, Windows, and its Linux VM) emulates arm64
		# out of the box; a Linux engine needs QEMU registered in binfmt_misc,
		# visible here only when the engine runs on this kernel.
		if [[ "$(uname -s)" == Linux && "${DOCKER_HOST:-unix://}" == unix://* &&
			"$(docker context show 2>/dev/null)" != desktop-linux ]] &&
			! grep -qs 'aarch64' /proc/sys/fs/binfmt_misc/* 2>/dev/null; then
			cat >&2 <<-EOF
				The Docker engine is amd64 and cannot run arm64 binaries: no QEMU entry for aarch64
				in /proc/sys/fs/binfmt_misc. The stack's functions are arm64. Either
				  - register the emulator once (until reboot):
				      docker run --privileged --rm tonistiigi/binfmt --install arm64
				    (or apt-get install qemu-user-static binfmt-support), or
				  - deploy amd64 bootstraps, run natively: FUNCTION_ARCH=amd64 (see localstack/README.md).
				LOCALSTACK_SKIP_ARCH_CHECK=1 skips this check.
			EOF
			return 1
		fi
	fi
}

# check_dns: the names cdklocal and the clients use must resolve to this
# machine (public DNS does: *.localhost.localstack.cloud is 127.0.0.1).
check_dns() {
	local names=("$ls_domain" "s3.$ls_domain")
	if ! node -e '
		const dns = require("dns");
		Promise.all(process.argv.slice(1).map(n => dns.promises.lookup(n).then(
			r => { if (!r.address.startsWith("127.") && r.address !== "::1") throw new Error(n + " is " + r.address); },
			e => { throw new Error(n + ": " + e.code); })))
		.catch(e => { console.error(e.message); process.exit(1); });
	' "${names[@]}"; then
		cat >&2 <<-EOF
			${names[*]} must resolve to 127.0.0.1 (public DNS does; a resolver with DNS-rebinding
			protection, or no network, does not). Add to /etc/hosts:
			  127.0.0.1 ${names[*]}
		EOF
		return 1
	fi
}
