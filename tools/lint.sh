#!/usr/bin/env bash
# OpenMMLab's code style on the whole tree: flake8, isort and yapf at the
# versions of .pre-commit-config.yaml, settings in setup.cfg.
#
#   tools/lint.sh          check; exits non-zero and shows the diff if not clean
#   tools/lint.sh --fix    rewrite the files with isort and yapf
#
# The tools live in their own virtualenv (.venv-lint, created on first use):
# they never go into the environment that runs the plugin.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS=(flake8==5.0.4 isort==5.11.5 yapf==0.32.0)
VENV=.venv-lint
PATHS=(dtl_mm tools tests configs docs setup.py)

if ! "$VENV/bin/python" -c 'import flake8, isort, yapf' 2>/dev/null; then
  echo "[lint] installing ${TOOLS[*]} into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "${TOOLS[@]}" >&2
fi

if [[ "${1:-}" == --fix ]]; then
  "$VENV/bin/isort" -q "${PATHS[@]}"
  "$VENV/bin/yapf" -r -i "${PATHS[@]}"
fi
status=0
"$VENV/bin/flake8" "${PATHS[@]}" || status=1
"$VENV/bin/isort" --check-only --diff -q "${PATHS[@]}" || status=1
"$VENV/bin/yapf" -r --diff "${PATHS[@]}" || status=1
if [[ $status == 0 ]]; then
  echo "[lint] clean: flake8, isort, yapf" >&2
else
  echo "[lint] not clean (above); tools/lint.sh --fix rewrites what isort" \
    "and yapf can" >&2
fi
exit $status
