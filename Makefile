# Skiff: build, run and test. `make test` is what CI runs (through .ci/run).
# GNU make; recipes use bash.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
ADDR    ?= 127.0.0.1:5000
DATA    ?= ./data
FUZZTIME ?= 10s

# Pinned client tools (scripts/tools.sh) come first on PATH for every recipe.
export PATH := $(CURDIR)/.tools/bin:$(PATH)

# Fuzz targets run briefly by `make test`: package:target.
FUZZ_TARGETS := ./pkg/oci:FuzzParseManifest ./pkg/oci:FuzzValidateRepository ./internal/httpapi:FuzzManifestPut

.PHONY: functions e2e-lambda stack test-large localstack-test synth infra-test run build tools test test-standins test-summary vet fmt-check unit integration-aws fuzz \
	conformance-all conformance conformance-aws conformance-aws-redirect \
	conformance-sparse conformance-sparse-strict conformance-aws-sparse conformance-aws-sparse-strict \
	conformance-auth conformance-aws-auth \
	bench clean distclean

# The AWS stand-ins (dynalite, and gofakes3 in tools/s3standin). `make test`
# starts them once, around everything that needs them, with
# scripts/with-standins.sh (free ports, private pid files, stopped on success,
# failure or ^C). A target run on its own that needs them starts its own set,
# unless both endpoints are already in the environment.
WITH_STANDINS := $(if $(and $(AWS_ENDPOINT_URL_S3),$(AWS_ENDPOINT_URL_DYNAMODB)),,scripts/with-standins.sh)

run: ## serve the registry on $(ADDR) with data in $(DATA)
	$(GO) run ./cmd/skiff serve --addr $(ADDR) --data $(DATA)

build: ## build bin/skiff
	$(GO) build -o bin/skiff ./cmd/skiff

tools: ## install pinned conformance, crane, regctl, oras, distribution (registry), cosign (+ skopeo, podman via apt as root)
	scripts/tools.sh

# The whole suite. Each step stops the run on failure. Everything after
# fmt-check runs in one sub-make inside scripts/with-standins.sh, so the
# stand-ins start once and are stopped whatever happens.
test: tools vet fmt-check
	scripts/with-standins.sh $(MAKE) --no-print-directory test-standins
	$(MAKE) --no-print-directory infra-test

test-standins: unit integration-aws fuzz conformance-all e2e-lambda

# The conformance runs of `make test` (target:label). conformance-all runs
# every one even when an earlier one fails, prints the summary line of each,
# and fails if any failed.
CONFORMANCE_RUNS := conformance:embedded conformance-aws:aws conformance-aws-redirect:aws-redirect \
	conformance-sparse:embedded-sparse conformance-sparse-strict:embedded-sparse-strict \
	conformance-aws-sparse:aws-sparse conformance-aws-sparse-strict:aws-sparse-strict \
	conformance-auth:embedded-auth conformance-aws-auth:aws-auth
conformance-all:
	@failed=""; \
	for run in $(CONFORMANCE_RUNS); do \
		$(MAKE) --no-print-directory "$${run%%:*}" || failed="$$failed $${run%%:*}"; \
	done; \
	$(MAKE) --no-print-directory test-summary; \
	if [[ -n "$$failed" ]]; then echo "conformance: FAILED:$$failed"; exit 1; fi

# The summary line of each conformance run of `make test`.
test-summary:
	@echo "== conformance summary"
	@for run in $(CONFORMANCE_RUNS); do \
		l="$${run#*:}"; \
		if [[ -s "results/conformance/$$l/summary.txt" ]]; then cat "results/conformance/$$l/summary.txt"; \
		else echo "[$$l] no summary: the run failed before the suite finished (see its output above)"; fi; \
	done

vet:
	$(GO) vet ./...

# Every Go file but installed tools, JS deps and CDK output.
fmt-check:
	@unformatted="$$(find . \( -name .tools -o -name node_modules -o -name cdk.out -o -name vendor -o -name .git \) -prune \
		-o -name '*.go' -print | xargs -r gofmt -l)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$unformatted"; exit 1; \
	fi

# SKIFF_REQUIRE_TOOLS=1 turns a skipped integration test (missing client
# tool) into a failure, SKIFF_REQUIRE_STANDINS=1 a skipped awsstore test
# (no stand-in) into one. -timeout bounds a hung package well below go test's
# 10m default, so one deadlock can't eat the CI budget; a panic dump names it.
TEST_TIMEOUT ?= 4m
GO_TEST_ENV := SKIFF_REQUIRE_TOOLS=1 SKIFF_REQUIRE_STANDINS=1
unit:
	$(GO_TEST_ENV) $(WITH_STANDINS) $(GO) test -race -count=1 -timeout=$(TEST_TIMEOUT) ./...

# The real-client integration tests again, with skiff on --backend aws over
# the stand-ins (a fresh bucket and table per server; see test/integration/doc.go).
integration-aws:
	SKIFF_IT_BACKEND=aws $(GO_TEST_ENV) $(WITH_STANDINS) \
		$(GO) test -race -count=1 -timeout=$(TEST_TIMEOUT) ./test/integration/

# Go 1.26's fuzz coordinator can fail a target at the -fuzztime boundary
# with a bare "context deadline exceeded" and no failing input, when a worker
# is starved on a busy machine (golang/go#75804, fixed in Go 1.27). Such a
# run is retried once; anything else, or a second one, fails the step (a
# real finding writes "Failing input written to testdata/fuzz/...").
# Minimizing a new interesting input may take 60 s by default, the whole
# budget of a short run (seen: FuzzManifestPut ran 182 inputs in 10 s);
# 200 runs bound it.
fuzz: ## run each fuzz target for $(FUZZTIME)
	@for t in $(FUZZ_TARGETS); do \
		pkg="$${t%%:*}"; fn="$${t#*:}"; \
		for attempt in 1 2; do \
			echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
			log="$$(mktemp)"; \
			if $(GO) test "$$pkg" -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x 2>&1 | tee "$$log"; then \
				rm -f "$$log"; break; \
			fi; \
			if [[ $$attempt == 1 ]] && grep -q 'context deadline exceeded' "$$log" && ! grep -q 'Failing input written' "$$log"; then \
				echo "fuzz: $$fn: bare 'context deadline exceeded' at the -fuzztime boundary, no failing input: the Go 1.26 coordinator race (golang/go#75804); retrying once"; \
				rm -f "$$log"; continue; \
			fi; \
			rm -f "$$log"; exit 1; \
		done; \
	done

# OCI conformance suite, every optional test on, sha512 data. Results in
# results/conformance/<label>/.
conformance: tools ## embedded backend, fresh skiff serve (or REGISTRY=host:port)
	CONFORMANCE_LABEL=$(if $(REGISTRY),remote,embedded) scripts/conformance.sh $(REGISTRY)

# --backend aws on the stand-ins, fresh random bucket and table, blobs served
# by skiff itself (no redirects): the same settings as the embedded run.
conformance-aws: tools
	CONFORMANCE_LABEL=aws SKIFF_SERVE_ARGS="$(AWS_SERVE_ARGS)" \
		$(WITH_STANDINS) scripts/conformance.sh

# --backend aws with the default redirects: a blob GET of >= 1 MiB answers
# 307 to a presigned S3 URL. The client then reads the blob from S3, whose
# answer cannot carry Docker-Content-Digest, so the suite's blob
# Docker-Content-Digest check is off here (with it on, the 8 chunked
# blob-get tests fail on "registry did not return a Docker-Content-Digest
# header"); everything else is as above.
conformance-aws-redirect: tools
	CONFORMANCE_LABEL=aws-redirect OCI_API_BLOBS_DIGEST_HEADER=false \
		SKIFF_SERVE_ARGS="--backend aws --create-resources" \
		$(WITH_STANDINS) scripts/conformance.sh

# The suite's sparse data (OCI_DATA_SPARSE: an image manifest with a layer
# never uploaded, an index with an absent linux/arm64 child), four ways.
#
# *-sparse: both repositories under partial/, whose policy (set through the
# operator API before the suite runs) accepts both: zero failures expected.
# *-sparse-strict: the default strict policy: the run passes only when some
# tests failed, every failed test is a sparse one (/sparse/ in its name),
# and every manifest PUT refused there answered 400 MANIFEST_BLOB_UNKNOWN
# (response and server log; see scripts/junitsum). Every optional API test
# on, as in the embedded run.
SPARSE_POLICY := partial/ --index-children=none --image-blobs=optional
SPARSE_ENV := OCI_DATA_SPARSE=true OCI_REPO1=partial/one OCI_REPO2=partial/two CONFORMANCE_POLICY="$(SPARSE_POLICY)"
SPARSE_STRICT_ENV := OCI_DATA_SPARSE=true CONFORMANCE_EXPECT_FAIL=/sparse/
AWS_SERVE_ARGS := --backend aws --create-resources --redirect-min=-1

conformance-sparse: tools
	CONFORMANCE_LABEL=embedded-sparse $(SPARSE_ENV) scripts/conformance.sh

conformance-sparse-strict: tools
	CONFORMANCE_LABEL=embedded-sparse-strict $(SPARSE_STRICT_ENV) scripts/conformance.sh

conformance-aws-sparse: tools
	CONFORMANCE_LABEL=aws-sparse $(SPARSE_ENV) SKIFF_SERVE_ARGS="$(AWS_SERVE_ARGS)" \
		$(WITH_STANDINS) scripts/conformance.sh

conformance-aws-sparse-strict: tools
	CONFORMANCE_LABEL=aws-sparse-strict $(SPARSE_STRICT_ENV) SKIFF_SERVE_ARGS="$(AWS_SERVE_ARGS)" \
		$(WITH_STANDINS) scripts/conformance.sh

# Authenticated: `skiff serve --auth`, the suite logging in as a user that
# scripts/conformance.sh creates with pull,push,delete on the two
# repositories and nothing else (before the server starts on the embedded
# backend, with --table once it has created the table on aws). Every option
# on, as in the embedded run. Anonymous blob mounts (no from=) are refused
# with auth on, so the suite's "mount anonymous" test gets 202 and falls back
# to an upload, which it reports as a skip: those two skips (sha256, sha512)
# are asserted, any other skip or any failure fails the run.
AUTH_ENV := CONFORMANCE_EXPECT_SKIP='mount anonymous/blob-mount-anonymous: registry returned status 202,'

conformance-auth: tools
	CONFORMANCE_LABEL=embedded-auth $(AUTH_ENV) SKIFF_SERVE_ARGS="--auth" scripts/conformance.sh

conformance-aws-auth: tools
	CONFORMANCE_LABEL=aws-auth $(AUTH_ENV) SKIFF_SERVE_ARGS="$(AWS_SERVE_ARGS) --auth" \
		$(WITH_STANDINS) scripts/conformance.sh

bench: ## AWS requests and store operations per operation, write amplification, peak heap (both backends); push throughput through the ingest service
	scripts/bench.sh
	scripts/bench-ingest.sh

# The 1 GiB whole-layer client test through the stack with the ingest
# service (about 12 GB of RAM: the S3 stand-in keeps objects in memory).
test-large: tools ## skopeo, podman, crane, oras, regctl push and pull a 1 GiB layer through `make stack`
	scripts/test-large.sh

functions: ## the three Lambda zips (provided.al2023, arm64) in build/functions/
	scripts/functions.sh

# The functions under the Lambda runtime interface emulator behind
# tools/lambdafront (the stack's CloudFront routes), over the stand-ins:
# origin-secret and body-limit checks, OCI conformance, real clients.
e2e-lambda: tools
	E2E_SKIP_TOOLS=1 scripts/e2e-lambda.sh

# The whole AWS-shaped stack in the foreground (stand-ins, the functions
# under the emulator, the front door, the ingest service, an admin): writes
# REGISTRY, ADMIN_USER and ADMIN_PASSWORD to $(SKIFF_STACK_ENV), stops on
# Ctrl-C. STACK_INGEST=0: pure Lambda.
stack: ## the AWS-shaped stack on this machine (STACK_INGEST=0: pure Lambda); credentials in ./stack.env
	scripts/stack.sh

# The stack deployed into LocalStack, end to end, with the same checks as
# e2e-lambda (scripts/lambda-checks.sh). Needs a Docker engine, so neither
# CI nor `make test` runs it: see localstack/README.md.
localstack-test:
	localstack/test.sh

synth: functions ## the CDK app's template in infra/cdk.out (real function zips)
	$(MAKE) -C infra synth

infra-test: ## the CDK app: vet, gofmt, template assertions, cdk-nag
	$(MAKE) -C infra check

clean:
	rm -rf bin results

distclean: clean
	rm -rf .tools scripts/standins/node_modules
