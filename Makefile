# One command each; both install what is missing first (nothing twice).
#   make demo  - toy COCO data, DTLv2-LS training + evaluation on CPU
#   make test  - the test suite
SHELL := /bin/bash

.PHONY: install demo test
install:
	@bash tools/install.sh >/dev/null

demo:
	@py="$$(bash tools/install.sh | tail -n 1)" && "$$py" tools/demo.py

test:
	@py="$$(bash tools/install.sh | tail -n 1)" && "$$py" -m pytest -q tests $(PYTEST_ARGS)
