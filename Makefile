# hubbub: `make serve` starts a server on embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: serve test test-eager lint typecheck proto services clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/hubbub serve --config examples/chat.yaml

test: $(DEVSTAMP) services
	$(PY) -m pytest

# On Python 3.12+ a session starts a frame's commands eagerly (core/session.py: _start),
# and an application may install asyncio.eager_task_factory (tests for both): paths
# `make test` on an older $(PYTHON) never takes. Run the core, integration and client
# tests again with the newest CPython 3.12+ found, in a venv of its own (.ci/run does).
EAGER_PYTHON ?= $(shell sh scripts/eager_python.sh)

test-eager: services
	@if [ -z "$(EAGER_PYTHON)" ]; then echo "test-eager: no CPython 3.12+ found, skipped"; exit 0; fi; \
	set -e; [ -x .venv-eager/bin/python ] || $(EAGER_PYTHON) -m venv .venv-eager; \
	.venv-eager/bin/python -m pip install --quiet -e '.[dev]'; \
	.venv-eager/bin/python -m pytest -q tests/core tests/integration tests/client

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

# Regenerate the Protobuf module from the schema (the generated file is committed).
# The package name (hubbub.protocol) is not on the wire; it keeps our descriptors apart
# from other Centrifuge clients' in one process.
proto: $(DEVSTAMP)
	$(PY) -m grpc_tools.protoc -Isrc --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
		--python_out=src --mypy_out=src src/hubbub/protocol/client.proto

# Start Redis, NATS and PostgreSQL when installed and not running; tests that need a
# missing one skip with the reason.
services:
	@sh scripts/services.sh

clean:
	rm -rf $(VENV) .venv-eager .pytest_cache .mypy_cache .ruff_cache
