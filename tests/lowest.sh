#!/usr/bin/env bash
# The lower bounds of pyproject.toml are true: install the LOWEST version of every direct dependency that
# pyproject.toml allows (uv's lowest-direct resolution) in a fresh virtual environment, then run the unit tests.
# Not part of CI (it downloads torch 2.4 with its CUDA wheels: ~2.5 GB to fetch, 5.3 GB on disk, 10-25 minutes);
# run it before raising or lowering a bound, before a release, and when a test starts using a newer API of a dependency.
#   bash tests/lowest.sh                    # Python 3.11 (PYTHON=/path/to/python3.13 for another interpreter)
#   VENV=/tmp/low bash tests/lowest.sh      # keep the venv (a new, empty DIR); later: /tmp/low/bin/python -m pytest
#   RESOLUTION=highest bash tests/lowest.sh # the newest versions instead (a fresh machine, today)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
RESOLUTION="${RESOLUTION:-lowest-direct}"
WORK="$(mktemp -d)"
VENV="${VENV:-$WORK/venv}"
command -v uv >/dev/null || python -m pip install -q uv
uv venv -q --seed --python "$PYTHON" "$VENV"            # --seed: pip, which tests/test_packaging.py calls
export VIRTUAL_ENV="$VENV"
start=$SECONDS
uv pip install -q --resolution "$RESOLUTION" -e ".[notebooks,test,book]"   # every extra: its bounds too
echo "== installed ($RESOLUTION, $("$VENV/bin/python" -V)) in $((SECONDS - start)) s:"
uv pip list | grep -iE '^(torch|torchvision|open-clip-torch|numpy|ipywidgets|ipykernel|pillow|safetensors|huggingface-hub|platformdirs|pandas|matplotlib) '
echo "== unit tests"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MPLBACKEND=Agg VS2MINI_PROFILE=toy PYTHONHASHSEED=0 \
  VS2MINI_CACHE="$WORK/cache" "$VENV/bin/python" -m pytest tests -p no:cacheprovider "$@"
