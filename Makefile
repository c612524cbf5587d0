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

.PHONY: functions e2e-lambda stack test-large localstack-test synth infra-test run build tools test test-standins \
	vet fmt-check unit integration-aws fuzz conformance bench clean distclean

# The AWS stand-ins (dynalite, and gofakes3 served by tools/standins). `make
# test` starts them once, around everything that needs them, with
# scripts/with-standins.sh (tools/standins: free ports, stopped on success,
# failure or ^C). A target run on its own that needs them starts its own set,
# unless both endpoints are already in the environment; plain `go test`
# starts what a test needs itself (internal/testenv).
WITH_STANDINS := $(if $(and $(AWS_ENDPOINT_URL_S3),$(AWS_ENDPOINT_URL_DYNAMODB)),,scripts/with-standins.sh)

run: ## serve the registry on $(ADDR) with data in $(DATA)
	$(GO) run ./cmd/skiff serve --addr $(ADDR) --data $(DATA)

build: ## build bin/skiff (with its VCS revision, for skiff version, whatever GOFLAGS says)
	$(GO) build -buildvcs=auto -o bin/skiff ./cmd/skiff

tools: ## install pinned conformance, crane, regctl, oras, distribution (registry), cosign (+ skopeo, podman via apt as root)
	scripts/tools.sh

# The whole suite. Each step stops the run on failure and says how long it
# took (scripts/step.sh). Everything after fmt-check runs in one sub-make
# under scripts/with-standins.sh, so the stand-ins start once and are
# stopped whatever happens.
STEP := scripts/step.sh
test:
	@rm -rf results/gotest
	@$(STEP) tools $(MAKE) --no-print-directory tools
	@$(STEP) vet $(MAKE) --no-print-directory vet
	@$(STEP) fmt-check $(MAKE) --no-print-directory fmt-check
	@$(STEP) stand-ins scripts/with-standins.sh $(MAKE) --no-print-directory TOOLS_DONE=1 test-standins
	@$(STEP) infra-test $(MAKE) --no-print-directory infra-test
	@count() { cat results/gotest/*.json 2>/dev/null | grep -c "\"Action\":\"$$1\",\"Package\":\"[^\"]*\",\"Test\":" || true; }; \
	echo "== Go tests run by make test (gotestsum): $$(count pass) passed, $$(count skip) skipped, $$(count fail) failed (subtests included; the conformance suite's own counts are above)"

test-standins:
	@$(STEP) unit $(MAKE) --no-print-directory unit
	@$(STEP) integration-aws $(MAKE) --no-print-directory integration-aws
	@$(STEP) fuzz $(MAKE) --no-print-directory fuzz
	@$(STEP) soak $(MAKE) --no-print-directory soak
	@$(STEP) conformance $(MAKE) --no-print-directory conformance
	@$(STEP) e2e-lambda $(MAKE) --no-print-directory e2e-lambda

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/lambda/

# Every Go file but installed tools, JS deps and CDK output.
fmt-check:
	@unformatted="$$(find . \( -name .tools -o -name node_modules -o -name cdk.out -o -name vendor -o -name .git \) -prune \
		-o -name '*.go' -print | xargs -r gofmt -l)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$unformatted"; exit 1; \
	fi

# SKIFF_REQUIRE_TOOLS=1 turns a skipped test (a missing client tool or
# stand-in) into a failure (internal/testenv). -timeout bounds a hung
# package well below go test's 10m default, so one deadlock can't eat the
# CI budget; a panic dump names it. gotestsum (scripts/tools.sh) runs them,
# a line per package and the count of tests at the end; without it, go test.
# TestConformance runs in its own step, without -race (make conformance).
TEST_TIMEOUT ?= 4m
GO_TEST_ENV := SKIFF_REQUIRE_TOOLS=1 SKIFF_REQUIRE_STANDINS=1
GOTEST = $(if $(wildcard .tools/bin/gotestsum),gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg --jsonfile results/gotest/$@.json --,$(GO) test)
# The tools a target needs: installed unless make test has done it already.
TOOLS := $(if $(TOOLS_DONE),,tools)
NOT_CONFORMANCE := -skip '^TestConformance$$'
unit:
	@mkdir -p results/gotest
	$(GO_TEST_ENV) $(WITH_STANDINS) $(GOTEST) -race -count=1 -timeout=$(TEST_TIMEOUT) $(NOT_CONFORMANCE) ./...

# Pushes, pulls, deletes and collections for SOAK (2 minutes by default) on
# both backends, without -race (the unit step runs it for 15 s with it).
SOAK ?= 2m
soak: ## the collector under concurrent pushes, pulls and deletes for $(SOAK), both backends (internal/server TestSoak)
	@mkdir -p results/gotest
	SKIFF_SOAK_DURATION=$(SOAK) $(GO_TEST_ENV) $(WITH_STANDINS) \
		$(subst pkgname-and-test-fails --format-hide-empty-pkg,standard-verbose,$(GOTEST)) -count=1 -timeout=$(TEST_TIMEOUT) -run '^TestSoak$$' -v ./internal/server/

# The real-client integration tests again, with skiff on --backend aws over
# the stand-ins (a fresh bucket and table per server; see test/integration/doc.go).
integration-aws:
	@mkdir -p results/gotest
	SKIFF_IT_BACKEND=aws $(GO_TEST_ENV) $(WITH_STANDINS) \
		$(GOTEST) -race -count=1 -timeout=$(TEST_TIMEOUT) $(NOT_CONFORMANCE) ./test/integration/

# The OCI conformance suite, every optional test on, sha512 data, in the
# nine configurations of test/integration's TestConformance (embedded and
# aws, with and without redirects, the sparse data under a partial policy
# and under the strict default, authenticated), or against a registry that
# is running: REGISTRY=host:port [SKIFF_IT_USER=... SKIFF_IT_PASSWORD=...].
# RUN=aws-auth picks one. Results in results/conformance/<label>/; a line
# per run at the end.
conformance: $(TOOLS) ## the OCI conformance suite, 9 configurations (RUN=label picks one; REGISTRY=host:port tests that registry)
	@rm -rf results/conformance; mkdir -p results/gotest
	@rc=0; $(GO_TEST_ENV) $(if $(REGISTRY),SKIFF_IT_REGISTRY=$(REGISTRY)) $(WITH_STANDINS) \
		$(GOTEST) -count=1 -timeout=15m -run '^TestConformance$$$(if $(RUN),/^$(RUN)$$)' ./test/integration/ || rc=$$?; \
	cat results/conformance/*/summary.txt 2>/dev/null || echo "conformance: no run wrote a summary"; exit $$rc

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

bench: $(TOOLS) ## AWS requests and store operations per operation, write and storage amplification, GC pass costs, peak heap (both backends); push speed vs distribution; push throughput through the ingest service; a 1 GiB layer by direct upload vs regctl's chunks into the pure-Lambda stack
	scripts/bench.sh
	scripts/bench-push.sh
	scripts/bench-ingest.sh
	scripts/bench-direct.sh

# The 1 GiB whole-layer client test through the stack with the ingest
# service (about 12 GB of RAM: the S3 stand-in keeps objects in memory).
test-large: tools ## skopeo, podman, crane, oras, regctl push and pull a 1 GiB layer through `make stack`
	SKIFF_REQUIRE_TOOLS=1 $(WITH_STANDINS) $(GO) test -tags e2e -count=1 -v -timeout 45m -run '^TestLargeLayers$$' ./test/lambda/

functions: ## the Lambda zips (provided.al2023, arm64) in build/functions/: the three route groups and the scheduled collector
	scripts/functions.sh

# The functions under the Lambda runtime interface emulator behind
# tools/lambdafront (the stack's CloudFront routes), over the stand-ins, in
# both modes (E2E_MODES="ingest lambda"): every test of test/integration
# through the front door, the conformance suite first; direct calls
# without the origin secret refused (test/lambda, build tag e2e). The
# report: results/e2e-lambda/summary.txt.
e2e-lambda: $(TOOLS)
	@mkdir -p results/gotest
	@rc=0; SKIFF_REQUIRE_TOOLS=1 $(WITH_STANDINS) $(GOTEST) -tags e2e -count=1 -timeout 30m -run '^(TestLambdaStack|TestSyncFunction)$$' ./test/lambda/ || rc=$$?; \
	cat results/e2e-lambda/summary.txt 2>/dev/null || echo "e2e-lambda: no report"; exit $$rc

# The whole AWS-shaped stack in the foreground (stand-ins, the functions
# under the emulator, the front door, the ingest service, an admin): writes
# REGISTRY, ADMIN_USER and ADMIN_PASSWORD to $(SKIFF_STACK_ENV), stops on
# Ctrl-C. STACK_INGEST=0: pure Lambda.
stack: ## the AWS-shaped stack on this machine (STACK_INGEST=0: pure Lambda); credentials in ./stack.env
	TOOLS_NO_APT=1 scripts/tools.sh
	GOFLAGS= $(GO) build -o .tools/bin/stack ./tools/stack
	$(WITH_STANDINS) .tools/bin/stack

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
