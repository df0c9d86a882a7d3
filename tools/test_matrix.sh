#!/usr/bin/env bash
# The compatibility matrix: builds each tested stack in its own venv (once;
# later runs only check it) through tools/install.sh and runs the
# compatibility subset of the tests (tests/compat_subset.txt) there.  CI
# runs the full suite on the default stack (`make test`) and the subset on
# the torch2.1 stack (`make test-floor`); this is `make test-matrix`.
#
#   tools/test_matrix.sh [stack ...]     (default: pinned torch2.1 onedl)
#
# Venvs live in $DTL_MM_VENVS (default ~/.cache/dtl_mm/venvs/<stack>), each
# with its own cached mmcv wheel (~/.cache/dtl_mm/wheels/<python-torch>).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENVS="${DTL_MM_VENVS:-$HOME/.cache/dtl_mm/venvs}"
# torch 2.1 has no wheels for python >= 3.12
BASE_PY="${DTL_MM_PYTHON:-$(command -v python3.11 || command -v python3)}"
STACKS=("$@"); [[ ${#STACKS[@]} -eq 0 ]] && STACKS=(pinned torch2.1 onedl)

# the compatibility subset, one pytest node id a line
mapfile -t COMPAT < <(grep -v '^#' tests/compat_subset.txt)

ROWS=(); FAILED=0
for stack in "${STACKS[@]}"; do
  echo "== $stack: installing into $VENVS/$stack" >&2
  start=$SECONDS
  if ! py="$(bash tools/install.sh --stack "$stack" --venv "$VENVS/$stack" \
      --python "$BASE_PY" --tests | tail -n 1)"; then
    ROWS+=("$stack|install failed|$((SECONDS - start))|-|FAIL"); FAILED=1
    continue
  fi
  t_install=$((SECONDS - start))
  versions="$("$py" - <<'PYEOF'
import importlib.metadata as md
import platform

import mmcv, mmdet, mmengine, mmseg, numpy, torch  # noqa: E401

providers = md.packages_distributions()
cols = [platform.python_version(), torch.__version__, numpy.__version__]
for module in (mmengine, mmcv, mmdet, mmseg):
    cols.append(f'{providers[module.__name__][0]} {module.__version__}')
print('|'.join(cols))
PYEOF
)"
  echo "== $stack: compatibility tests" >&2
  start=$SECONDS
  if "$py" -m pytest -q -p no:cacheprovider "${COMPAT[@]}" >&2; then
    result=pass
  else
    result=FAIL; FAILED=1
  fi
  ROWS+=("$stack|$versions|$t_install|$((SECONDS - start))|$result")
done

echo
echo "stack | python | torch | numpy | mmengine | mmcv | mmdet | mmseg |" \
     "install s | tests s | result"
for r in "${ROWS[@]}"; do echo "${r//|/ | }"; done
exit $FAILED
