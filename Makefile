# kubelite — the two commands that matter: `make up` (a running cluster) and
# `make test` (everything CI runs).
GO        ?= go
BIN       := bin
DATA_DIR  ?= /var/lib/kubelite
FUZZTIME  ?= 100000x

.PHONY: all build up down test unit fuzz vet lint bench clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/kubelite .
	@ln -sf kubelite $(BIN)/kubectl-lite

# Start an all-in-one cluster in the background (installs what is missing).
up:
	scripts/up.sh

# Stop it and remove what it created on the host (DATA=1 also removes the data dir).
down:
	scripts/down.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

lint: vet
	shellcheck scripts/*.sh .ci/run

# Everything CI runs: static checks, unit + integration + end-to-end tests
# (end-to-end tests need root and the packages scripts/install-deps.sh
# installs; they fail, never skip, when something is missing), short fuzzing.
test: build lint
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSelector$$' -fuzztime $(FUZZTIME) ./api/

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./apiserver/...

clean:
	rm -rf $(BIN)
