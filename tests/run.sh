#!/usr/bin/env bash
# Everything CI checks, offline, in the smoke profile: unit tests, every notebook (nbmake), the book (warnings = errors).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"   # tiny smoke models: one thread is faster and steadier on 2 cores
export VS2MINI_PROFILE=smoke PYTHONHASHSEED=0   # no MPLBACKEND: notebooks keep the inline backend
export VS2MINI_CACHE="${VS2MINI_CACHE:-$(mktemp -d)/cache}"   # fresh cache: nothing stale from a previous run
echo "== unit tests"; MPLBACKEND=Agg python -m pytest tests
echo "== notebooks (nbmake, smoke profile)"; python -m pytest --nbmake --nbmake-timeout=600 -p no:cacheprovider notebooks
echo "== book (jupyter-book, warnings as errors)"; rm -rf _build; jupyter-book build . -W -n --keep-going
echo "== all checks passed"
