#!/usr/bin/env bash
# Installs the OpenMMLab stack dtl_mm needs, once, and prints the python to
# use on its last line (for the Makefile).
#
#   tools/install.sh [--stack pinned|torch2.1|onedl|installed]
#                    [--venv DIR]
#                    [--python PY] [--tests] [--yes]
#
# Stacks (see docs/install.md):
#   pinned     the default, and what CI tests: mmengine 0.10.7, mmcv 2.1.0
#              (built from source with its ops), mmdet 3.3.0,
#              mmsegmentation 1.2.2, mmpretrain 1.2.0 (the mmpretrain ViT /
#              DINOv2 trunks) and torchvision (mmpretrain imports it).
#              Keeps a torch already installed (>= 2.1, e.g. a CUDA build)
#              and adds the torchvision of its release; else installs torch
#              2.14.1 + torchvision 0.29.1, a matching pair (this machine's
#              CPU torch 2.13.0 file has no torchvision that loads beside
#              it: `operator torchvision::nms does not exist`).
#   torch2.1   the floor of the supported range, where OpenMMLab's own
#              mmcv 2.1.0 wheels are: torch 2.1.2 + torchvision 0.16.2 +
#              numpy 1.26.4 + the pinned versions (python <= 3.11).  CI runs
#              the compatibility subset there.
#   onedl      the maintained fork: onedl-mmengine 0.10.12, onedl-mmcv 2.3.6
#              (built from source), onedl-mmdetection 3.5.1,
#              onedl-mmsegmentation 1.4.2; torch as for `pinned`, no
#              mmpretrain.
#   vision     the former name of `pinned` (accepted).
#   installed  use what is installed: check the versions and say what is
#              missing; changes nothing.
#
# Environment: --venv DIR (created if missing), else the active virtualenv /
# conda env, else .venv in the repository.  In an active environment (the
# user's own) nothing is replaced without asking (or --yes), and only what
# the plugin needs is installed; build tools for mmcv go to a separate
# cache directory, never into the environment.
set -euo pipefail

# One function, so that bash reads the whole script before it runs.
main() {
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STACK="${DTL_MM_STACK:-pinned}"; VENV=""; BASE_PY=python3
TESTS=0; YES=0
usage() { sed -n '2,37p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stack) STACK="$2"; shift 2 ;;
    --venv) VENV="$2"; shift 2 ;;
    --python) BASE_PY="$2"; shift 2 ;;
    --tests) TESTS=1; shift ;;
    --yes|-y) YES=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "[install] unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
say() { echo "[install] $*" >&2; }
CACHE_ROOT="${DTL_MM_CACHE:-$HOME/.cache/dtl_mm}"

# ---- the stacks: what pip installs (PKGS, EXTRA), what must go (CONFLICTS)
# mmdet 3.3.0 and mmseg 1.2.2 refuse mmcv >= 2.2.0 at import, so upstream
# mmcv is pinned to 2.1.0; it ships no wheels for current torch, so it is
# built from source with its ops.  mmengine 0.10.7 is its last release.
TORCH_SPEC=">=2.1"; TORCH_DEFAULT="2.14.1"; NUMPY_SPEC=""; RANGES=()
# torchvision, installed in one pip call with torch when torch is
# installed (they must match); beside a kept torch, the release pip finds
# for it (the constraints pin torch)
VISION=""; VISION_DEFAULT=""
[[ "$STACK" == vision ]] && STACK=pinned
case "$STACK" in
  pinned|torch2.1)
    MMCV_DIST=mmcv; MMCV=2.1.0
    PKGS=("mmengine==0.10.7" "mmdet==3.3.0" "mmsegmentation==1.2.2"
          "mmpretrain==1.2.0")
    # mmcv's runtime needs (its wheel is installed with --no-deps);
    # mmseg's model package imports ftfy and regex
    EXTRA=(addict packaging Pillow pyyaml yapf opencv-python-headless
           ftfy regex matplotlib)
    CONFLICTS=(onedl-mmengine onedl-mmcv onedl-mmdetection
               onedl-mmsegmentation)
    # mmengine 0.10.7 reads `mmdet::` configs through pkg_resources, which
    # setuptools 82 removed
    RANGES=("setuptools <82")
    VISION=torchvision; VISION_DEFAULT="torchvision==0.29.1"
    if [[ "$STACK" == torch2.1 ]]; then
      TORCH_SPEC="==2.1.2"; TORCH_DEFAULT="2.1.2"; NUMPY_SPEC="==1.26.4"
      VISION_DEFAULT="torchvision==0.16.2"
    fi ;;
  onedl)
    MMCV_DIST=onedl-mmcv; MMCV=2.3.6
    PKGS=("onedl-mmengine==0.10.12" "onedl-mmdetection==3.5.1"
          "onedl-mmsegmentation==1.4.2")
    EXTRA=(addict packaging Pillow pyyaml yapf opencv-python ftfy regex
           matplotlib)
    CONFLICTS=(mmengine mmcv mmdet mmsegmentation) ;;
  installed) MMCV_DIST=""; PKGS=(); EXTRA=(); CONFLICTS=() ;;
  *) say "unknown stack '$STACK' (pinned, torch2.1, onedl, installed)"
     exit 2 ;;
esac
WANT=()  # what the check expects: "distribution specifier"
for p in "${PKGS[@]}"; do WANT+=("${p%%==*} ==${p##*==}"); done
[[ -n "$MMCV_DIST" ]] && WANT+=("$MMCV_DIST ==$MMCV")
WANT+=("torch $TORCH_SPEC" "${RANGES[@]}")
[[ -n "$VISION" ]] && WANT+=("torchvision >0")
[[ -n "$NUMPY_SPEC" ]] && WANT+=("numpy $NUMPY_SPEC")

# ---- the environment
OWN=1  # an environment this script made (free to replace packages in)
if [[ -n "$VENV" ]]; then
  if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV with $BASE_PY"; "$BASE_PY" -m venv "$VENV"
  fi
  PY="$VENV/bin/python"
elif [[ -n "${VIRTUAL_ENV:-}" || -n "${CONDA_PREFIX:-}" ]]; then
  PY="$(command -v python)"; OWN=0
  say "using the active environment: $PY"
else
  if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"; "$BASE_PY" -m venv .venv
  fi
  PY="$ROOT/.venv/bin/python"
fi
if [[ "$STACK" == torch2.1 ]] && ! "$PY" -c \
    'import sys; sys.exit(sys.version_info >= (3, 12))'; then
  say "torch 2.1 has no wheels for $("$PY" -V); use --python python3.11"
  exit 2
fi

# check [--quiet]: compares the environment with the stack (or, for
# `installed`, with the tested ranges) and imports what the plugin imports.
check() {
  DTL_WANT="$(printf '%s\n' "${WANT[@]}")" DTL_STACK="$STACK" \
    DTL_TESTS="$TESTS" "$PY" "$ROOT/tools/check_env.py" "$@"
}

if [[ "$STACK" == installed ]]; then
  if check; then say "environment ready ($PY)"; echo "$PY"; exit 0; fi
  say "nothing was changed; install what is listed above, or choose a"
  say "stack: tools/install.sh --stack pinned|onedl|torch2.1"
  exit 1
fi
if check --quiet; then
  say "environment ready ($PY)"; echo "$PY"; exit 0
fi

# ---- the plan: say exactly what will change, ask before replacing
pip_() { "$PY" -m pip install --disable-pip-version-check "$@" >&2; }
declare -A NOW  # distribution -> installed version ("-" when absent)
while read -r dist ver; do NOW[$dist]="$ver"; done < <(
  DTL_WANT="$(printf '%s\n' "${WANT[@]}" "${CONFLICTS[@]/%/ >0}")" \
    DTL_STACK="$STACK" "$PY" "$ROOT/tools/check_env.py" --versions)
PLAN=(); REPLACE=(); REMOVE=()
# torch is kept when it is in the stack's range (e.g. a user's CUDA build)
if [[ "${NOW[torch]}" == - ]] || ! DTL_WANT="torch $TORCH_SPEC" \
    DTL_STACK="$STACK" "$PY" "$ROOT/tools/check_env.py" --quiet --only
then
  PLAN+=("torch==$TORCH_DEFAULT")
  [[ "${NOW[torch]}" != - ]] && REPLACE+=("torch ${NOW[torch]}")
fi
# torchvision goes in with torch, in one pip call: a torchvision that does
# not match torch's build fails at import
if [[ -n "$VISION" ]]; then
  if [[ " ${PLAN[*]} " == *" torch=="* ]]; then
    PLAN+=("$VISION_DEFAULT"); [[ "${NOW[torchvision]:--}" != - ]] \
      && REPLACE+=("torchvision ${NOW[torchvision]}")
  elif [[ "${NOW[torchvision]:--}" == - ]]; then
    PLAN+=("$VISION")  # the release for the kept torch
  fi
fi
for r in "${RANGES[@]}"; do
  if ! DTL_WANT="$r" DTL_STACK="$STACK" \
      "$PY" "$ROOT/tools/check_env.py" --quiet --only; then
    PLAN+=("${r// /}"); [[ "${NOW[${r%% *}]}" != - ]] \
      && REPLACE+=("${r%% *} ${NOW[${r%% *}]}")
  fi
done
for p in ${NUMPY_SPEC:+"numpy$NUMPY_SPEC"} "$MMCV_DIST==$MMCV" "${PKGS[@]}"
do
  d="${p%%==*}"; [[ "${NOW[$d]}" == "${p##*==}" ]] && continue
  PLAN+=("$p"); [[ "${NOW[$d]}" != - ]] && REPLACE+=("$d ${NOW[$d]}")
done
for d in "${CONFLICTS[@]}"; do
  [[ "${NOW[$d]}" != - ]] && REMOVE+=("$d") \
    && REPLACE+=("$d ${NOW[$d]} (removed)")
done
[[ $TESTS == 1 ]] && PLAN+=(pytest pytest-xdist)
say "stack '$STACK' into $PY"
say "will install: ${PLAN[*]:-nothing new} (+ their own dependencies and"
say "  ${EXTRA[*]}; mmcv is built from source unless its wheel is cached)"
if [[ ${#REPLACE[@]} -gt 0 ]]; then
  say "will replace: ${REPLACE[*]}"
  if [[ $OWN == 0 && $YES == 0 ]]; then
    if [[ -t 0 ]]; then
      read -r -p "[install] replace these in your environment? [y/N] " a
      [[ "$a" == [yY]* ]] || { say "nothing was changed"; exit 1; }
    else
      say "not replacing packages in your environment without --yes;"
      say "nothing was changed (or use --stack installed to only check)"
      exit 1
    fi
  fi
fi
[[ ${#REMOVE[@]} -gt 0 ]] && "$PY" -m pip uninstall -y "${REMOVE[@]}" >&2

# constraints keep pip from moving torch (e.g. a user's CUDA build) or
# numpy while it resolves the OpenMMLab packages
CONSTRAINTS="$(mktemp)"; trap 'rm -f "$CONSTRAINTS"' EXIT
# (numpy < 2.5: the newest the matrix has run)
echo "numpy${NUMPY_SPEC:-<2.5}" >>"$CONSTRAINTS"
# torch (and numpy, for a stack that pins it) before mmcv is built; numpy
# before torch is first imported (without it torch warns "Failed to
# initialize NumPy" on every import)
# a kept torch stays as it is while torchvision is resolved for it
[[ "${NOW[torch]}" != - && " ${PLAN[*]} " != *" torch=="* ]] \
  && echo "torch==${NOW[torch]}" >>"$CONSTRAINTS"
FIRST=()
for p in "${PLAN[@]}"; do
  [[ "$p" == torch==* || "$p" == torchvision* || "$p" == numpy* ]] \
    && FIRST+=("$p")
done
if [[ -z "$NUMPY_SPEC" ]] && ! "$PY" -c 'import numpy' 2>/dev/null; then
  FIRST=(numpy "${FIRST[@]}")
fi
if [[ ${#FIRST[@]} -gt 0 ]]; then
  say "installing ${FIRST[*]}"
  pip_ -q -c "$CONSTRAINTS" "${FIRST[@]}"
fi
"$PY" -c 'import torch; print("torch==" + torch.__version__)' \
  >>"$CONSTRAINTS"
[[ -n "$VISION" ]] && "$PY" -c \
  'import torchvision; print("torchvision==" + torchvision.__version__)' \
  >>"$CONSTRAINTS"

# ---- mmcv with its compiled ops, from a wheel cached per build
build_tools() {
  # setuptools < 82: mmcv 2.1.0's setup.py and torch 2.1's extension
  # builder import pkg_resources (removed in setuptools 82); ninja makes
  # the build parallel.  Kept out of the environment itself.
  local dir="$CACHE_ROOT/build-tools/$("$PY" -c \
    'import sys; print("py%d%d" % sys.version_info[:2])')"
  if [[ ! -x "$dir/bin/ninja" ]]; then
    "$PY" -m pip install -q --disable-pip-version-check --target "$dir" \
      "setuptools<82" wheel ninja >&2
  fi
  echo "$dir"
}

mmcv_ready() {
  "$PY" -c "import importlib.metadata as md, mmcv.ops
assert md.version('$MMCV_DIST') == '$MMCV'" 2>/dev/null
}

# The cache key says what the compiled ops fit: python, torch and, for a
# CUDA build, the CUDA version and the GPU architectures compiled for.
# torch builds for TORCH_CUDA_ARCH_LIST, else for the visible GPUs.
wheel_key() {
  "$PY" - "$1" <<'PYEOF'
import os
import sys

import torch

key = 'py%d%d-torch%s' % (*sys.version_info[:2], torch.__version__)
if sys.argv[1] == '1':
    archs = os.environ.get('TORCH_CUDA_ARCH_LIST')
    if not archs:
        caps = {torch.cuda.get_device_capability(i)
                for i in range(torch.cuda.device_count())}
        archs = ';'.join('%d.%d' % c for c in sorted(caps))
    archs = archs.replace(';', '_').replace(' ', '_').replace('+', 'ptx')
    key += '-cuda%s-arch%s' % (torch.version.cuda, archs or 'default')
print(key.replace('+', '_'))
PYEOF
}

build_progress() {
  # ninja prints "[done/total] c++ ..." per compile step
  local log="$1" start="$2" last done total el
  # (|| true: no step yet is no error; this runs under set -e)
  last="$(grep -aoE '^\s*\[[0-9]+/[0-9]+\]' "$log" | tail -1 \
    | tr -d ' []' || true)"
  el=$((SECONDS - start))
  if [[ -z "$last" ]]; then
    say "mmcv build: preparing (${el} s)"; return
  fi
  done="${last%/*}"; total="${last#*/}"
  say "mmcv build: [$done / $total] compile steps, ${el} s elapsed," \
      "about $(( el * (total - done) / done )) s left"
}

# What pip builds mmcv from: its release on PyPI, or, when torch's headers
# need C++20 (torch 2.14: "C++20 or later compatible compiler is required
# to use ATen") while mmcv's setup.py asks for -std=c++17, a copy of its
# source release with that flag raised to c++20.
mmcv_source() {
  local tools="$1" dir="$2" header
  header="$("$PY" -c 'import os, torch
print(os.path.join(os.path.dirname(torch.__file__), "include/ATen/ATen.h"))')"
  if ! grep -q 'C++20 or later' "$header" 2>/dev/null; then
    echo "$MMCV_DIST==$MMCV"; return
  fi
  local src="$dir/src-c++20"
  if [[ ! -f "$src/setup.py" ]]; then
    rm -rf "$src" "$dir/sdist"; mkdir -p "$src" "$dir/sdist"
    PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m pip download \
      -q --disable-pip-version-check --no-deps --no-build-isolation \
      --no-binary :all: -d "$dir/sdist" "$MMCV_DIST==$MMCV" >&2
    tar xzf "$dir"/sdist/*.tar.gz -C "$src" --strip-components=1
    sed -i 's/-std=c++1[47]/-std=c++20/g' "$src/setup.py"
    say "building $MMCV_DIST from its source release with -std=c++20" \
        "(torch $("$PY" -c 'import torch; print(torch.__version__)')" \
        "needs C++20)"
  fi
  echo "$src"
}

if ! mmcv_ready; then
  # CUDA ops need a CUDA torch and an nvcc of the same major version
  # (torch refuses to build with another); else CPU ops only
  CUDA_OPS=0
  TORCH_CUDA="$("$PY" -c 'import torch; print(torch.version.cuda or "")')"
  if [[ -n "$TORCH_CUDA" ]] && command -v nvcc >/dev/null; then
    NVCC_CUDA="$(nvcc --version | grep -oE 'release [0-9.]+' | cut -d' ' -f2)"
    if [[ "${NVCC_CUDA%%.*}" != "${TORCH_CUDA%%.*}" ]]; then
      say "nvcc is CUDA $NVCC_CUDA, torch was built with CUDA $TORCH_CUDA:"
      say "  building CPU ops only (put a CUDA $TORCH_CUDA nvcc first on"
      say "  PATH, or set CUDA_HOME, for CUDA ops)"
    elif [[ -z "${TORCH_CUDA_ARCH_LIST:-}" ]] && ! "$PY" -c \
        'import sys, torch; sys.exit(torch.cuda.device_count() == 0)'; then
      # torch compiles for the visible GPUs; with none and no
      # TORCH_CUDA_ARCH_LIST it stops (an empty arch list), e.g. the
      # pinned stack's CUDA torch 2.14.1 on a CPU machine
      say "no GPU visible and no TORCH_CUDA_ARCH_LIST: building CPU ops"
      say "  only (set TORCH_CUDA_ARCH_LIST, e.g. '9.0', for CUDA ops)"
    else
      CUDA_OPS=1
    fi
  fi
  CACHE="${DTL_MM_WHEEL_CACHE:-$CACHE_ROOT/wheels}/$(wheel_key $CUDA_OPS)"
  WHEEL_GLOB="${MMCV_DIST//-/_}-$MMCV-*.whl"
  mkdir -p "$CACHE"
  if ! ls "$CACHE"/$WHEEL_GLOB >/dev/null 2>&1; then
    TOOLS="$(build_tools)"
    export MMCV_WITH_OPS=1 FORCE_CUDA=$CUDA_OPS
    export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    say "building $MMCV_DIST $MMCV with $([[ $CUDA_OPS == 1 ]] && echo \
      CUDA || echo CPU) ops into $CACHE (10-20 minutes on 2 cores)"
    LOG="$CACHE/build-$MMCV_DIST-$MMCV.log"
    # --no-cache-dir: pip's own wheel cache is keyed by the sdist only and
    # would hand a CPU build to a CUDA environment
    PYTHONPATH="$TOOLS${PYTHONPATH:+:$PYTHONPATH}" PATH="$TOOLS/bin:$PATH" \
      "$PY" -m pip wheel --no-cache-dir --no-build-isolation --no-deps -v \
      -c "$CONSTRAINTS" -w "$CACHE" "$(mmcv_source "$TOOLS" "$CACHE")" \
      >"$LOG" 2>&1 &
    BUILD=$!; START=$SECONDS
    while kill -0 $BUILD 2>/dev/null; do
      sleep 30; kill -0 $BUILD 2>/dev/null && build_progress "$LOG" $START
    done
    if ! wait $BUILD; then
      tail -40 "$LOG" >&2; say "mmcv build failed; full log: $LOG"; exit 1
    fi
    say "mmcv built in $((SECONDS - START)) s"
  fi
  # --no-deps: the wheel must not pull its own choice of opencv/mmengine
  pip_ -q --no-deps "$CACHE"/$WHEEL_GLOB
fi

pip_ -q -c "$CONSTRAINTS" ${NUMPY_SPEC:+"numpy$NUMPY_SPEC"} \
  "${RANGES[@]// /}" "${PKGS[@]}" \
  "${EXTRA[@]}" \
  $([[ $TESTS == 1 ]] && echo pytest pytest-xdist)
pip_ -q --no-deps -e .

if ! check; then
  say "the environment still fails its check (above)"; exit 1
fi
say "environment ready ($PY)"
echo "$PY"
}

main "$@"; exit $?  # on one line: bash never reads past it
