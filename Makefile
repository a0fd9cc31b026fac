# The two commands a user needs: `make demo` and `make test`. Each sets the machine up first (idempotent).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test test-fast lint typecheck check-protos protos bench asyncapi clean

setup:
	@scripts/setup.sh

## Run the whole system on this machine: embedded broker, 2 hospitals x 2 kiosks, gateway, subscribers.
demo: setup
	$(BIN)/medkiosk up --hospitals 2 --kiosks 2 --rate 5 --duration $${DURATION:-30} --metrics-base-port $${METRICS_BASE_PORT:-9400} --fl-rounds $${FL_ROUNDS:-5} $$(command -v prometheus >/dev/null && echo --prometheus)

## The whole test suite (starts its own brokers on 127.0.0.1).
test: setup
	$(BIN)/pytest

## Everything but the multi-process end-to-end runs.
test-fast: setup
	$(BIN)/pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

## Regenerate the committed protobuf Python and fail on any difference; buf lint.
check-protos: setup
	PYTHON=$(BIN)/python scripts/check_protos.sh

protos: setup
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. schemas/v1/*.proto

## Every benchmark, one JSON line each (several minutes; figures go in BENCHMARKS.md).
bench: setup
	@for b in bus he edge edge_liveness edge_triage dp_step hospital discovery autoscale; do $(BIN)/python benchmarks/$$b.py || exit 1; done

## Regenerate docs/asyncapi (the AsyncAPI document of the hospital and auditor topics; a test fails when stale).
asyncapi: setup
	$(BIN)/python -m cloud_workers._asyncapi --write docs/asyncapi

clean:
	rm -rf .medkiosk .pytest_cache .mypy_cache .ruff_cache .hypothesis
