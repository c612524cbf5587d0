#!/usr/bin/env bash
# Deploys Skiff's CDK stack (infra/) into a running LocalStack
# (localstack/compose.yaml), as `cdk deploy` would into AWS.
#
#   localstack/deploy.sh
#
# Steps:
#   1. the CDK CLI and its LocalStack wrapper: npm ci into
#      localstack/node_modules (aws-cdk pinned to infra/package.json's
#      version, checked; aws-cdk-local: the cdklocal wrapper, which points
#      the CLI at LocalStack);
#   2. the functions: `make functions` (scripts/functions.sh: arm64 zips in
#      build/functions/, the deployable artefact), or with FUNCTION_ARCH=amd64
#      amd64 zips in localstack/build/functions-amd64/ (the stack still says
#      arm64, it has no architecture prop: LocalStack must run with
#      LAMBDA_IGNORE_ARCHITECTURE=1, which test.sh sets);
#   3. `cdklocal bootstrap aws://000000000000/us-east-1`, then
#      `cdklocal deploy Skiff` from infra/ with the zips
#      (-c skiff:functionsDir=...), its cloud assembly in
#      localstack/build/cdk.out and its outputs in
#      localstack/build/outputs.json (infra/cdk.out is left alone);
#   4. localstack/lsinfo stack: waits for the three functions to be Active
#      and writes localstack/build/stack.env (bucket, table, each function's
#      Function URL; the stack does not output the URLs) and
#      localstack/build/origin-secret (mode 0600, from Secrets Manager).
#
# LocalStack's free edition has no CloudFront: the distribution and its
# CloudFront Function are skipped (compose.yaml sets
# CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES=1), so the RegistryURL and
# DistributionDomainName outputs hold a placeholder. localstack/test.sh
# puts tools/lambdafront -proxy in front instead.
#
# Needs: a LocalStack answering on 127.0.0.1:4566, go, node and npm,
# localhost.localstack.cloud resolving to 127.0.0.1. Run on its own against
# a fresh LocalStack (`docker compose -f localstack/compose.yaml up -d`);
# LocalStack's CloudFormation updates are limited, so redeploy into a new
# one (`down -v`, `up -d`) rather than over an existing stack.
#
# Env: FUNCTION_ARCH=arm64 (default) or amd64; LOCALSTACK_SKIP_ARCH_CHECK=1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=localstack/env.sh
source "$root/localstack/env.sh"

log() { printf 'localstack/deploy.sh: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

need go node npm || die "install the tools above"
mkdir -p "$ls_build/bin"

# ---- LocalStack must be up before anything is built against it.
GOFLAGS='' go build -o "$ls_build/bin/lsinfo" ./localstack/lsinfo
"$ls_build/bin/lsinfo" health -endpoint "$ls_direct" -services "${LOCALSTACK_SERVICES:-s3,dynamodb,lambda,iam,sts,secretsmanager,cloudformation,logs,cloudwatch,ssm,kms}" -timeout 30s ||
	die "no LocalStack at $ls_direct: start it with \`docker compose -f localstack/compose.yaml up -d\` (or run localstack/test.sh)"
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	check_function_arch || die "the Docker engine can't run FUNCTION_ARCH=$function_arch functions"
	if [[ "$function_arch" == amd64 ]] &&
		! docker inspect "$ls_container" --format '{{range .Config.Env}}{{println .}}{{end}}' 2>/dev/null | grep -x 'LAMBDA_IGNORE_ARCHITECTURE=1' >/dev/null; then
		log "WARNING: FUNCTION_ARCH=amd64 needs LocalStack started with LAMBDA_IGNORE_ARCHITECTURE=1 (the stack declares arm64);"
		log "WARNING: container $ls_container does not have it: the functions may fail with 'exec format error'"
	fi
fi
check_dns || die "cdklocal and the registry clients reach LocalStack as $ls_domain"

# ---- 1. the CDK CLI
want_cdk="$(node -p 'require(process.argv[1]).devDependencies["aws-cdk"]' "$root/infra/package.json")"
have_cdk="$(node -p 'require(process.argv[1]).devDependencies["aws-cdk"]' "$ls_here/package.json")"
[[ "$want_cdk" == "$have_cdk" ]] ||
	die "localstack/package.json pins aws-cdk $have_cdk, infra/package.json $want_cdk: make them equal (then npm install in localstack/ to update its lock)"
if [[ ! -f "$ls_here/node_modules/.package-lock.json" || "$ls_here/package.json" -nt "$ls_here/node_modules/.package-lock.json" ||
	"$ls_here/package-lock.json" -nt "$ls_here/node_modules/.package-lock.json" ]]; then
	log "npm ci in localstack/ (aws-cdk $want_cdk, aws-cdk-local)"
	(cd "$ls_here" && npm ci --no-audit --no-fund)
fi
cdklocal="$ls_here/node_modules/.bin/cdklocal"
log "$("$cdklocal" --version | tr '\n' ' ')"

# ---- 2. the functions
if [[ "$function_arch" == arm64 ]]; then
	fn_dir="$root/build/functions"
	log "building the arm64 deployment zips (make functions)"
	scripts/functions.sh
else
	fn_dir="$ls_build/functions-amd64"
	log "building amd64 zips into $fn_dir (FUNCTION_ARCH=amd64)"
	scripts/functions.sh --arch amd64 --zip --out "$fn_dir"
fi

# ---- 3. bootstrap and deploy
# cdklocal: the CDK CLI with its AWS endpoints set to LocalStack (and every
# other AWS_* variable not allowlisted removed from its environment). S3
# goes path-style to s3.localhost.localstack.cloud.
# AWS_ENVAR_ALLOWLIST keeps env.sh's settings (no config or credentials
# file, test keys, the region) in the CLI's environment.
run_cdklocal() {
	AWS_ENDPOINT_URL="http://$ls_domain:$ls_port" AWS_ENDPOINT_URL_S3="http://s3.$ls_domain:$ls_port" AWS_S3_FORCE_PATH_STYLE=1 \
		AWS_ENVAR_ALLOWLIST=AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_REGION,AWS_DEFAULT_REGION,AWS_CONFIG_FILE,AWS_SHARED_CREDENTIALS_FILE,AWS_EC2_METADATA_DISABLED \
		"$cdklocal" "$@"
}
log "cdklocal bootstrap aws://000000000000/us-east-1"
# From a directory without cdk.json: bootstrapping needs no app.
mkdir -p "$ls_build/bootstrap"
(cd "$ls_build/bootstrap" && run_cdklocal bootstrap aws://000000000000/us-east-1 --no-notices)

log "cdklocal deploy Skiff (functions from $fn_dir)"
rm -rf "$ls_build/cdk.out"
(cd "$root/infra" && run_cdklocal deploy Skiff --require-approval never --no-notices --progress events \
	--output "$ls_build/cdk.out" --outputs-file "$ls_build/outputs.json" \
	--context "skiff:functionsDir=$fn_dir")

# ---- 4. what the front door and the tests need
"$ls_build/bin/lsinfo" stack -endpoint "$ls_direct" -stack Skiff \
	-env-file "$ls_build/stack.env" -secret-file "$ls_build/origin-secret" -timeout 5m
log "deployed: localstack/build/stack.env, localstack/build/origin-secret, localstack/build/outputs.json"
