# credit-explainer: every command bootstraps its own .venv from pyproject.toml.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv demo test unit lint typecheck clean audit

help:
	@echo "make demo   train (if needed), start the local stack, score sample applicants, stop"
	@echo "make test   lint, type-check and run every test"
	@echo "make audit  pip-audit the dependencies (part of make test)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "credit-explainer needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

demo: venv
	$(BIN)/credit-explainer demo

test: venv lint audit
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest tests/unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# Known-vulnerability audit (pip-audit) of the dev environment and the pinned locks
# shipped to AWS. Policy and strict mode: .ci/audit.py, .ci/pip-audit-ignore.txt.
audit: venv
	$(BIN)/python .ci/audit.py

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
