# Agora: contract-first gRPC shop. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/.bin
export PATH := $(BIN):$(CURDIR)/$(VENV)/bin:$(PATH)

GO_TOOLS := \
	github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3 \
	google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.10 \
	google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1

# Print this help: every target with the comment above it.
help:
	@awk '/^# /{c=substr($$0,3)} /^[a-z][a-z0-9-]*:/{if(c){split($$1,t,":");printf "  %-18s %s\n",t[1],c};c=""}' $(MAKEFILE_LIST)

$(VENV)/.stamp: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.lock
	# generated/python, services/ and clients/python are import roots for every tool in the venv.
	printf '%s\n' "$(CURDIR)/generated/python" "$(CURDIR)/services" "$(CURDIR)/clients/python" \
	  > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/agora-paths.pth"
	touch $@

# Create the virtualenv from the locked dependencies (done automatically by other targets).
venv: $(VENV)/.stamp

$(BIN)/.stamp: Makefile
	mkdir -p $(BIN)
	for t in $(GO_TOOLS); do GOBIN=$(BIN) go install $$t; done
	touch $@

# Install the Go tools (grpcurl, protoc-gen-go, protoc-gen-go-grpc) into .bin/.
tools: $(BIN)/.stamp

# Re-resolve requirements.in into requirements.lock.
lock: venv
	$(VENV)/bin/uv pip compile requirements.in -o requirements.lock --python-version 3.11 -q --no-header

# Regenerate all code derived from the protos (Python, Go).
generate: venv tools
	scripts/generate.sh

# Lint and format-check the contracts.
proto-lint: venv
	buf lint
	buf format --diff --exit-code

# Contracts of implemented services are released: from then on they may only grow.
# Add a service's directory here when it ships, then run `make release-contracts`.
RELEASED_CONTRACTS := protos/agora/catalog protos/agora/identity protos/agora/inventory \
  protos/agora/orders protos/agora/payments

# Fail if the contracts break compatibility with the released image (protos/released.binpb).
proto-breaking: venv
	buf breaking protos --against protos/released.binpb

# Record the released contracts (RELEASED_CONTRACTS) in protos/released.binpb; review the diff.
release-contracts: venv
	buf build protos $(addprefix --path ,$(RELEASED_CONTRACTS)) -o protos/released.binpb

# Lint the Python code (ruff, mypy).
lint: venv
	ruff check services tests scripts bench clients/python
	ruff format --check services tests scripts bench clients/python
	mypy

# Run every test: unit, integration (SQLite and PostgreSQL), e2e over real processes, Go.
test: venv tools
	$(PY) -m pytest tests
	# -count=1: the Go test drives the Python catalog, which go test cannot see change.
	cd clients/go && go test -count=1 ./...

# Run only the unit tests (no network, seconds).
test-unit: venv
	$(PY) -m pytest tests/unit

# Run the integration tests (real databases, in-process servers on free ports).
test-integration: venv
	$(PY) -m pytest tests/integration

# AGORA_FAULT_SEED=<n> replays a run; AGORA_FAULT_KILLS=<n> sets how many kills (default 60).
# Randomized fault run: checkouts while orders is SIGKILLed at random (minutes).
test-faults: venv tools
	$(PY) -m pytest tests/faults -m faults -s

# Long hostile-input run: every RPC of every service gets generated, broken and oversized bodies.
# AGORA_FUZZ_SEED=<n> replays a run; AGORA_FUZZ_INPUTS=<n> sets how many inputs (default 100000).
test-fuzz: venv
	$(PY) -m pytest tests/fuzz -m fuzz -s

# Run the end-to-end tests against real service processes, driven by grpcurl.
test-e2e: venv tools
	$(PY) -m pytest tests/e2e

# Start every implemented service on its default port; Ctrl-C stops them all.
run: venv tools
	$(PY) scripts/run.py

# `make certs ARGS=--force` makes a new CA and every certificate; keys are 0600.
# Make the local CA and the certificates of mTLS mode (AGORA_TLS=mtls) in $AGORA_CERTS_DIR or var/certs.
certs: venv
	$(PY) scripts/certs.py $(ARGS)

# `make dlq` lists; `$(PY) -m runtime.deadletters replay --all` (or SEQ...) replays, `delete SEQ...` drops.
# List the dead letters (events consumers gave up on) at NATS_URL; replay them with runtime.deadletters.
dlq: venv
	$(PY) -m runtime.deadletters list

# Measure catalog against a bare echo server with h2load and print ratios.
bench: venv
	$(PY) bench/run.py

# Remove local state (databases, virtualenv, tools).
clean:
	rm -rf var $(VENV) $(BIN)
