# Dropout in LLMs: the course and dropoutlib.
#   make setup   .venv with torch (CPU wheel 2.13.0 unless TORCH_SPEC says otherwise) and dropoutlib[dev]
#   make test    setup, ruff (lint + format check), the whole test suite
# TORCH_SPEC is passed to pip as it is, e.g.
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed

.PHONY: setup test lint format

setup: $(STAMP)

# torch first, pinned: a bare "torch>=2.2" on a machine with no torch pulls GBs of CUDA wheels.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(TORCH_SPEC) 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch" 
	$(PIP) install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import dropoutlib, pytest, ruff"
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(VENV)/bin/pytest -q
