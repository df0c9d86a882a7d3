# One command each; all install what is missing first (nothing twice).
#   make demo         - toy COCO data, DTLv2-LS training + evaluation on CPU
#   make test         - the test suite (STACK=pinned|onedl|torch2.1|installed)
#                       without the tests marked `mmpretrain`, then those in
#                       the `vision` stack's venv (make test-mmpretrain)
#   make test-mmpretrain - the tests that need mmpretrain (and so
#                       torchvision), in ~/.cache/dtl_mm/venvs/vision
#   make test-fast    - the unit tests only (not the end-to-end runs of the
#                       tools marked slow): under a minute on 2 cores
#   make test-matrix  - the compatibility subset on every tested stack, each
#                       in its own venv under ~/.cache/dtl_mm/venvs
#   make lint         - flake8 / isort / yapf (OpenMMLab's style), in their
#                       own venv (.venv-lint)
SHELL := /bin/bash
STACK ?= pinned
# mmpretrain imports torchvision, which does not load beside the pinned
# stack's CPU torch: its tests run in a venv of the `vision` stack
VISION_VENV ?= $(HOME)/.cache/dtl_mm/venvs/vision
VISION_PYTHON ?= python3
# test-fast runs on every core (pytest-xdist), at most 4 processes
FAST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))

.PHONY: install demo test test-fast test-mmpretrain test-matrix lint
install:
	@bash tools/install.sh --stack $(STACK) >/dev/null

demo:
	@py="$$(bash tools/install.sh --stack $(STACK) | tail -n 1)" && \
	  "$$py" tools/demo.py

# the `mmpretrain` tests are deselected (not skipped) here and run in the
# vision venv; PYTHONPATH: that venv is shared between checkouts, so this
# checkout's dtl_mm is the one tested (and the one its tools import)
test:
	@py="$$(bash tools/install.sh --stack $(STACK) --tests | tail -n 1)" && \
	  "$$py" -m pytest -q -m "not mmpretrain" tests $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-mmpretrain

test-fast:
	@py="$$(bash tools/install.sh --stack $(STACK) --tests | tail -n 1)" && \
	  "$$py" -m pytest -q -m "not slow and not mmpretrain" \
	  -n $(FAST_WORKERS) tests $(PYTEST_ARGS)

test-mmpretrain:
	@py="$$(bash tools/install.sh --stack vision --venv $(VISION_VENV) \
	  --python $(VISION_PYTHON) --tests | tail -n 1)" && \
	  PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" \
	  "$$py" -m pytest -q -m mmpretrain tests $(PYTEST_ARGS)

test-matrix:
	@bash tools/test_matrix.sh $(STACKS)

lint:
	@bash tools/lint.sh
