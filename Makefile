# One command each; all install what is missing first (nothing twice).
#   make demo         - toy COCO data, DTLv2-LS training + evaluation on CPU
#   make test         - the whole test suite (STACK=pinned|onedl|installed),
#                       on every core (pytest-xdist, at most 4 processes)
#   make test-fast    - the unit tests only (not the end-to-end runs of the
#                       tools marked slow): under a minute on 2 cores
#   make test-floor   - the compatibility subset (tests/compat_subset.txt)
#                       on the oldest supported torch (the torch2.1 stack),
#                       in ~/.cache/dtl_mm/venvs/torch2.1
#   make test-matrix  - the compatibility subset on every tested stack, each
#                       in its own venv under ~/.cache/dtl_mm/venvs
#   make lint         - flake8 / isort / yapf (OpenMMLab's style), in their
#                       own venv (.venv-lint)
SHELL := /bin/bash
STACK ?= pinned
FLOOR_VENV ?= $(HOME)/.cache/dtl_mm/venvs/torch2.1
# torch 2.1 has no wheels for python >= 3.12
FLOOR_PYTHON ?= $(shell command -v python3.11 || echo python3)
# test and test-fast run on every core (pytest-xdist), at most 4 processes
FAST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))
COMPAT = $(shell grep -v '^\#' tests/compat_subset.txt)

.PHONY: install demo test test-fast test-floor test-matrix lint
install:
	@bash tools/install.sh --stack $(STACK) >/dev/null

demo:
	@py="$$(bash tools/install.sh --stack $(STACK) | tail -n 1)" && \
	  "$$py" tools/demo.py

test:
	@py="$$(bash tools/install.sh --stack $(STACK) --tests | tail -n 1)" && \
	  "$$py" -m pytest -q -n $(FAST_WORKERS) tests $(PYTEST_ARGS)

test-fast:
	@py="$$(bash tools/install.sh --stack $(STACK) --tests | tail -n 1)" && \
	  "$$py" -m pytest -q -m "not slow" -n $(FAST_WORKERS) tests \
	  $(PYTEST_ARGS)

# PYTHONPATH: that venv is shared between checkouts, so this checkout's
# dtl_mm is the one tested (and the one its tools import)
test-floor:
	@py="$$(bash tools/install.sh --stack torch2.1 --venv $(FLOOR_VENV) \
	  --python $(FLOOR_PYTHON) --tests | tail -n 1)" && \
	  PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" \
	  "$$py" -m pytest -q -p no:cacheprovider $(COMPAT) $(PYTEST_ARGS)

test-matrix:
	@bash tools/test_matrix.sh $(STACKS)

lint:
	@bash tools/lint.sh
