# Dropout in LLMs: the course and dropoutlib.
#   make setup   .venv with torch (CPU wheel 2.13.0 unless TORCH_SPEC says otherwise) and dropoutlib[dev]
#   make test    setup, ruff (lint + format check), the whole test suite, then nbval on chapters/en
#   make book    setup, execute the chapters whose code, parameters or library version changed
#                since their committed outputs (FORCE=1: all of them; papermill, profile auto),
#                build the three editions into book/_build/html/{en,ru,zh} (+ index.html)
#   make html    the three editions from the committed outputs, nothing executed (seconds)
#   make student student notebooks book/_build/student/<lang>/*.ipynb (solutions replaced by stubs)
#                and the student edition book/_build/student/html (solutions hidden)
#   make colab   rewrite the chapters' Colab install URL and GPU metadata from _config.yml
#   make nbval   re-execute chapters/en with DROPOUTLIB_PROFILE=smoke, compare with committed outputs
#   make system-deps  Debian packages (best effort, as root): fonts-noto-cjk, chromium, chromium-driver
#   make bench   what dropout costs, measured: results/bench-<device>.json (minutes on a CPU;
#                BENCH_ARGS="--quick" for a seconds-long smoke run into bench-<device>-quick.json)
# TORCH_SPEC is passed to pip as it is, e.g.
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed

.PHONY: setup test lint format bench book html student colab nbval system-deps

# The corpora beside the checkout (../shared/data) when there, unless DROPOUTLIB_DATA is set.
DATA_ENV := $(if $(DROPOUTLIB_DATA),,$(if $(wildcard ../shared/data),DROPOUTLIB_DATA=$(abspath ../shared/data)))

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

test: lint system-deps
	$(VENV)/bin/pytest -q
	@$(MAKE) --no-print-directory nbval

# nbval: a second pytest run, on the English notebooks only (ru/zh are tied to them by
# tests/test_parity.py). Kernel = this venv's Python (--nbval-current-env), cwd = chapters/en.
nbval: setup
	@if ls chapters/en/*.ipynb >/dev/null 2>&1; then \
	  echo "nbval: chapters/en re-executed with DROPOUTLIB_PROFILE=smoke"; \
	  $(DATA_ENV) DROPOUTLIB_PROFILE=smoke $(VENV)/bin/pytest -q -p no:cacheprovider --nbval \
	    --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg chapters/en; \
	else echo "nbval: skipped (no chapter in chapters/en yet)"; fi

system-deps:
	@bash book/tools/system-deps.sh $(PY)

colab: setup
	$(PY) -m book.tools.colab --fix

book: setup system-deps colab
	$(DATA_ENV) $(PY) -m book.tools.execute $(if $(FORCE),--force)
	$(PY) -m book.tools.build

html: setup
	$(PY) -m book.tools.build

student: setup
	$(PY) -m book.tools.build --student

bench: setup
	$(PY) -m dropoutlib bench $(BENCH_ARGS)
