# credit-explainer: every command bootstraps its own .venv from pyproject.toml.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv demo test unit lint clean audit load lock-container sam sam-validate sam-build

help:
	@echo "make demo            train (if needed), start the local stack, score sample applicants, stop"
	@echo "make test            lint, type-check, audit, sam build and run every test"
	@echo "make venv            create .venv with the four distributions, editable (every target does)"
	@echo "make unit            the unit tests only"
	@echo "make lint            ruff and mypy"
	@echo "make audit           pip-audit the dependencies (part of make test)"
	@echo "make sam             sam validate --lint, then sam-build"
	@echo "make sam-validate    sam validate --lint"
	@echo "make sam-build       the Lambda bundle and schema layer (arm64, and x86_64 for the tests)"
	@echo "make lock-container  regenerate container/requirements.lock from model_src/pyproject.toml"
	@echo "make load            load-test the local stack (req/s, p50/p99, errors, memory)"
	@echo "make bench           benchmark against the original blog's path: scoring, start-up, requests/s (out/*.json)"
	@echo "make clean           remove .venv, the sam builds and the tool caches"

venv: $(STAMP)

# Reinstall when the dependencies change, and when a package appears under a mapped directory
# (an editable install only knows the packages that existed when it was made).
PACKAGES := $(wildcard model_src/*/__init__.py client/*/__init__.py lambda_fn/*/__init__.py)

# The four distributions (docs/architecture.md), editable, in one pip call: the local ones satisfy
# the tools' dependencies on the other three by name.
DISTRIBUTIONS := pyproject.toml client/pyproject.toml model_src/pyproject.toml lambda_fn/pyproject.toml

$(STAMP): $(DISTRIBUTIONS) $(PACKAGES)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "credit-explainer needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@# -qq: setuptools prints a ten-line "Editable installation" notice per distribution (its
	@# meta-path finder); errors still show, and test_distributions fails on a build warning.
	$(BIN)/python -m pip install -qq --disable-pip-version-check \
		-e ./model_src -e ./lambda_fn -e './client[pandas,plot]' -e '.[dev]'
	@touch $@

demo: venv
	$(BIN)/credit-explainer demo

test: venv lint audit sam
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest tests/unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# The model image's pinned, hashed lock (container/requirements.lock), resolved for the image's
# Python (3.12, x86_64) and constrained to the versions this environment tests.
lock-container: venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > $(VENV)/tested-versions.txt
	$(BIN)/uv pip compile model_src/pyproject.toml container/requirements.in --generate-hashes \
		--python-version 3.12 --python-platform x86_64-manylinux_2_28 --quiet \
		--constraint $(VENV)/tested-versions.txt --custom-compile-command "make lock-container" \
		--output-file container/requirements.lock

# Load test of `credit-explainer up` on 127.0.0.1 (locust, bounded: 60 s and 20,000 requests
# per scenario). Figures also in out/load.json.
load: venv
	$(BIN)/python tests/load/run_load.py --seconds 60 --json out/load.json

# Known-vulnerability audit (pip-audit) of the dev environment and the pinned locks
# shipped to AWS. Policy and strict mode: .ci/audit.py, .ci/pip-audit-ignore.txt.
audit: venv
	$(BIN)/python .ci/audit.py

# Speed and memory against the original blog's path, in one process; then a fresh container's
# readiness and the model server's requests/s against their references (wrk: apt-get install wrk).
.PHONY: bench
bench: venv sam-build
	$(BIN)/python tests/bench/bench_explain.py
	$(BIN)/python tests/bench/bench_families.py
	$(BIN)/python tests/bench/serving.py
	$(BIN)/python tests/bench/serving.py --capture-cost

clean:
	rm -rf $(VENV) .aws-sam .aws-sam-x86_64 .pytest_cache .mypy_cache .ruff_cache

# --- scoring API: SAM template, Lambda bundle, credit_schema layer (issue 3) -----------------
# `sam build` for the python3.13 runtime needs python3.13: set PYTHON313_BIN to its bin/
# directory, or it is found with pyenv or under ~/.pyenv/versions/3.13*.
SAM := $(abspath $(BIN))/sam
export SAM_CLI_TELEMETRY := 0
PYTHON313_BIN ?= $(shell for d in "$$(pyenv prefix 3.13 2>/dev/null)/bin" $(HOME)/.pyenv/versions/3.13*/bin /root/.pyenv/versions/3.13*/bin /usr/local/bin /usr/bin; do [ -x "$$d/python3.13" ] && "$$d/python3.13" -c '' 2>/dev/null && { echo "$$d"; break; }; done)
SCHEMA_SRC := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))/model_src/credit_schema
SAM_BUILD := $(SAM) build --cached --parallel
# The schema of the model the API fronts (its schema.json), shipped in the layer as
# /opt/credit-explainer/schema.json: `make sam-build API_SCHEMA=models/mine/schema.json`.
# sam build hands it to build-CreditSchemaLayer as $CREDIT_EXPLAINER_API_SCHEMA (absolute).
BUILTIN_SCHEMA := $(SCHEMA_SRC)/schemas/give-me-some-credit.json
API_SCHEMA ?= $(BUILTIN_SCHEMA)
BUILT_SCHEMA := .aws-sam/build/CreditSchemaLayer/credit-explainer/schema.json

sam: sam-validate sam-build

sam-validate: venv
	$(SAM) validate --lint

# The deployable arm64 build (.aws-sam/build) and an x86_64 twin (.aws-sam-x86_64/build: its own build.toml, so the caches do not mix) that
# the tests import and run under python3.13 on this machine.
sam-build: venv
	@test -n "$(PYTHON313_BIN)" || { echo "sam build needs python3.13 (the Lambda runtime): install it (pyenv install 3.13) or set PYTHON313_BIN=/path/to/bin" >&2; exit 1; }
	@# sam's cache keys on the layer's sources: another schema must rebuild the layer.
	@cmp -s "$(API_SCHEMA)" "$(BUILT_SCHEMA)" || rm -rf .aws-sam/cache .aws-sam-x86_64/cache
	CREDIT_EXPLAINER_API_SCHEMA="$(abspath $(API_SCHEMA))" PATH="$(PYTHON313_BIN):$$PATH" $(SAM_BUILD)
	CREDIT_EXPLAINER_API_SCHEMA="$(abspath $(API_SCHEMA))" PATH="$(PYTHON313_BIN):$$PATH" $(SAM_BUILD) --parameter-overrides Architecture=x86_64 --build-dir .aws-sam-x86_64/build --cache-dir .aws-sam-x86_64/cache

# Called by `sam build` (CreditSchemaLayer, BuildMethod: makefile): the layer is the package itself.
build-CreditSchemaLayer:
	mkdir -p "$(ARTIFACTS_DIR)/python/credit_schema"
	cp "$(SCHEMA_SRC)"/*.py "$(SCHEMA_SRC)/py.typed" "$(ARTIFACTS_DIR)/python/credit_schema/"
	mkdir -p "$(ARTIFACTS_DIR)/python/credit_schema/schemas"
	cp "$(SCHEMA_SRC)"/schemas/*.json "$(ARTIFACTS_DIR)/python/credit_schema/schemas/"
	mkdir -p "$(ARTIFACTS_DIR)/credit-explainer"
	cp "$${CREDIT_EXPLAINER_API_SCHEMA:-$(BUILTIN_SCHEMA)}" "$(ARTIFACTS_DIR)/credit-explainer/schema.json"
