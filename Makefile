# deer — make help lists the targets.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 10s
ADDR      ?=

# Fuzz targets as package:Target; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := ./conf:FuzzLoadTOML ./conf:FuzzEnv ./conf:FuzzPatch \
	./httpapi:FuzzPostConfig ./httpapi:FuzzPostTask ./httpapi:FuzzOpenAIBody ./httpapi:FuzzPostFaults \
	./internal/sim:FuzzChat ./internal/sim:FuzzEmbeddings ./internal/sim:FuzzSearch ./internal/sim:FuzzControl

.PHONY: help build run test verify bench chaos cluster-demo fuzz compat clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build deerd (and the other commands) into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

run: build ## start deerd on conf/deer.toml (127.0.0.1:8000; ADDR=host:port overrides)
	./$(BIN)/deerd --config conf/deer.toml $(if $(ADDR),--addr $(ADDR))

test: ## the whole test suite with the race detector
	$(GO) test -race -count=1 ./...

verify: ## gofmt check, go vet, go mod tidy check, then the tests
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@cp go.mod /tmp/deer-go.mod.bak && cp go.sum /tmp/deer-go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changes go.mod/go.sum:"; git --no-pager diff -- go.mod go.sum; \
		cp /tmp/deer-go.mod.bak go.mod; cp /tmp/deer-go.sum.bak go.sum; exit 1; fi
	$(MAKE) test

bench: build ## deerd side by side with direct calls, nginx and Portkey (QUICK=1: ~2 min); rewrites docs/benchmarks.md
	scripts/bench/setup.sh
	ulimit -n 65536 2>/dev/null || echo "bench: open-file limit stays at $$(ulimit -n) (ulimit -n 65536 refused)"; \
	pin=""; if command -v taskset >/dev/null && [ "$$(nproc)" -ge 2 ]; then pin="taskset -c 1"; fi; \
	$$pin ./$(BIN)/deerbench $(if $(QUICK),--quick)

chaos: build ## fault drill: deerd under load while every actor kind crashes (QUICK=1: ~20 s; RATE=, DURATION=, GRACE=); rewrites docs/chaos.md
	./$(BIN)/deerchaos $(if $(QUICK),--quick) $(if $(RATE),--rate $(RATE)) $(if $(DURATION),--duration $(DURATION)) $(if $(GRACE),--grace $(GRACE))

fuzz: ## run every fuzz target briefly (FUZZTIME=10s each)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

compat: ## the OpenAI SDK and LangChain (npm) against a real deerd; needs node and npm
	scripts/compat/run.sh

cluster-demo: build ## three deerd nodes sharing one redis-server (installed by scripts/test-deps.sh) in front of deersim at 200 req/s: shared rate, a node SIGKILLed, Redis killed and back (QUICK=1: ~50 s, noisier rates)
	scripts/test-deps.sh >/dev/null
	./$(BIN)/deercluster $(if $(QUICK),--quick)

clean: ## remove build output and the scratch directories of bench and chaos
	rm -rf $(BIN) .bench .chaos .cluster
