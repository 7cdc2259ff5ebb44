# hubbub: `make serve` starts a server on embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: serve test lint typecheck proto services clean

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
