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
FUZZ_TARGETS := ./pkg/oci:FuzzParseManifest ./pkg/oci:FuzzValidateRepository

.PHONY: run build tools test vet fmt-check unit fuzz conformance bench clean distclean

run: ## serve the registry on $(ADDR) with data in $(DATA)
	$(GO) run ./cmd/skiff serve --addr $(ADDR) --data $(DATA)

build: ## build bin/skiff
	$(GO) build -o bin/skiff ./cmd/skiff

tools: ## install pinned conformance, crane, regctl, oras (+ skopeo via apt as root)
	scripts/tools.sh

# The whole suite. Each step stops the run on failure.
test: tools vet fmt-check unit fuzz conformance

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
# tool) into a failure. -timeout bounds a hung package well below go test's
# 10m default, so one deadlock can't eat the CI budget; a panic dump names it.
TEST_TIMEOUT ?= 4m
unit:
	SKIFF_REQUIRE_TOOLS=1 $(GO) test -race -count=1 -timeout=$(TEST_TIMEOUT) ./...

fuzz: ## run each fuzz target for $(FUZZTIME)
	@for t in $(FUZZ_TARGETS); do \
		pkg="$${t%%:*}"; fn="$${t#*:}"; \
		echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test "$$pkg" -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) || exit 1; \
	done

conformance: tools ## OCI conformance suite against a fresh skiff serve (or REGISTRY=host:port)
	scripts/conformance.sh $(REGISTRY)

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

clean:
	rm -rf bin results

distclean: clean
	rm -rf .tools
