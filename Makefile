# One command each; all install what is missing first (nothing twice).
#   make demo         - toy COCO data, DTLv2-LS training + evaluation on CPU
#   make test         - the test suite (STACK=pinned|onedl|torch2.1|installed)
#   make test-fast    - the unit tests only (not the end-to-end runs of the
#                       tools marked slow): under a minute on 2 cores
#   make test-matrix  - the compatibility subset on every tested stack, each
#                       in its own venv under ~/.cache/dtl_mm/venvs
#   make lint         - flake8 / isort / yapf (OpenMMLab's style), in their
#                       own venv (.venv-lint)
SHELL := /bin/bash
STACK ?= pinned
# test-fast runs on every core (pytest-xdist), at most 4 processes
FAST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))

.PHONY: install demo test test-fast test-matrix lint
install:
	@bash tools/install.sh --stack $(STACK) >/dev/null

demo:
	@py="$$(bash tools/install.sh --stack $(STACK) | tail -n 1)" && \
	  "$$py" tools/demo.py

test:
	@py="$$(bash tools/install.sh --stack $(STACK) --tests | tail -n 1)" && \
	  "$$py" -m pytest -q tests $(PYTEST_ARGS)

test-fast:
	@py="$$(bash tools/install.sh --stack $(STACK) --tests | tail -n 1)" && \
	  "$$py" -m pytest -q -m "not slow" -n $(FAST_WORKERS) tests $(PYTEST_ARGS)

test-matrix:
	@bash tools/test_matrix.sh $(STACKS)

lint:
	@bash tools/lint.sh
