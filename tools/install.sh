#!/usr/bin/env bash
# Installs the OpenMMLab stack dtl_mm needs, once.
# - Honours an active venv / conda env (and the torch already in it, e.g. a CUDA build);
#   otherwise creates .venv in the repo root.
# - A second run only checks the imports and returns (no rebuild).
# Prints the python to use on its last line, for the Makefile.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ -n "${VIRTUAL_ENV:-}" || -n "${CONDA_PREFIX:-}" ]]; then
  PY="$(command -v python)"
  echo "[install] using the active environment: $PY" >&2
else
  if [[ ! -x .venv/bin/python ]]; then
    echo "[install] creating .venv" >&2
    python3 -m venv .venv
  fi
  PY="$ROOT/.venv/bin/python"
fi

# Versions that work together today (see SPEC / README):
#   mmdet 3.3.0 and mmseg 1.2.2 refuse mmcv >= 2.2.0 at import, so mmcv is pinned to 2.1.0;
#   mmcv 2.1.0 ships no wheels for current torch, so it is built from source with its ops;
#   mmengine 0.10.7 is the last release and the one mmdet 3.3 / mmseg 1.2 are tested against.
MMENGINE=0.10.7; MMCV=2.1.0; MMDET=3.3.0; MMSEG=1.2.2; MMPRETRAIN=1.2.0

check() {
  "$PY" - <<PYEOF 2>/dev/null
import importlib.metadata as md
want = {"mmengine": "$MMENGINE", "mmcv": "$MMCV", "mmdet": "$MMDET",
        "mmsegmentation": "$MMSEG", "mmpretrain": "$MMPRETRAIN"}
for name, ver in want.items():
    assert md.version(name) == ver, name
import pytest, mmcv.ops, mmdet, mmseg, mmpretrain  # noqa: F401
from mmcv.ops import RoIAlign  # compiled ops present
import dtl_mm  # noqa: F401
PYEOF
}

if check; then
  echo "[install] environment ready ($PY)" >&2
  echo "$PY"; exit 0
fi

pip_() { "$PY" -m pip install --disable-pip-version-check "$@" >&2; }

# setuptools < 82: mmcv 2.1.0's setup.py imports pkg_resources, removed in setuptools 82.
pip_ -q --upgrade pip "setuptools<82" wheel ninja
if ! "$PY" -c "import torch" 2>/dev/null; then
  # CPU default; a user who wants CUDA installs their torch into the env first.
  pip_ -q "torch==2.13.0"
fi
pip_ -q "numpy<2.5" "mmengine==$MMENGINE" pytest

if ! "$PY" -c "import mmcv.ops; assert __import__('mmcv').__version__ == '$MMCV'" 2>/dev/null; then
  # Cache the built wheel per (torch, CUDA, python) so a new venv does not rebuild, and a
  # CUDA env never picks up a CPU-only build (pip's own cache would not tell them apart).
  KEY="$("$PY" -c 'import sys, torch; print(f"py{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}".replace("+", "_"))')"
  CACHE="${DTL_MM_WHEEL_CACHE:-$HOME/.cache/dtl_mm/wheels}/$KEY"
  mkdir -p "$CACHE"
  if ! ls "$CACHE"/mmcv-"$MMCV"-*.whl >/dev/null 2>&1; then
    export MMCV_WITH_OPS=1
    if command -v nvcc >/dev/null && "$PY" -c "import torch,sys; sys.exit(0 if torch.version.cuda else 1)"; then
      export FORCE_CUDA=1; echo "[install] building mmcv $MMCV with CUDA ops" >&2
    else
      export FORCE_CUDA=0; echo "[install] building mmcv $MMCV with CPU ops" >&2
    fi
    export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    # torch's extension builder compiles in parallel only if it finds ninja
    export PATH="$(dirname "$PY"):$PATH"
    echo "[install] this takes about 5-7 minutes on 2 cores; progress every 30 s" >&2
    LOG="$CACHE/build.log"
    # --no-cache-dir: pip's own wheel cache is keyed by the sdist only and
    # would hand a CPU build to a CUDA environment
    "$PY" -m pip wheel --no-cache-dir --no-build-isolation --no-deps -v \
      -w "$CACHE" "mmcv==$MMCV" >"$LOG" 2>&1 &
    BUILD=$!
    START=$SECONDS
    while kill -0 $BUILD 2>/dev/null; do
      sleep 30
      n=$(grep -cE '^\[[0-9]+/[0-9]+\]|(g\+\+|gcc|c\+\+|nvcc) ' "$LOG" || true)
      last=$(grep -oE '^\[[0-9]+/[0-9]+\]' "$LOG" | tail -1 || true)
      echo "[install] mmcv build running: $((SECONDS - START)) s, ${last:-$n compile steps}" >&2
    done
    if ! wait $BUILD; then
      tail -40 "$LOG" >&2; echo "[install] mmcv build failed; full log: $LOG" >&2; exit 1
    fi
  fi
  pip_ --no-deps "$CACHE"/mmcv-"$MMCV"-*.whl
  # mmcv's own runtime needs (no-deps above keeps pip from touching torch)
  pip_ -q addict packaging Pillow pyyaml yapf opencv-python-headless
fi

pip_ -q "mmcv==$MMCV" "mmengine==$MMENGINE" "mmdet==$MMDET" "mmsegmentation==$MMSEG" "mmpretrain==$MMPRETRAIN" \
  ftfy regex matplotlib
pip_ -q --no-deps -e .

if ! check; then
  echo "[install] the environment still fails its import check:" >&2
  "$PY" -c "import mmcv.ops, mmdet, mmseg, mmpretrain, dtl_mm" >&2 || true
  exit 1
fi
echo "[install] environment ready ($PY)" >&2
echo "$PY"
