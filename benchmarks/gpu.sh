#!/usr/bin/env bash
# Every GPU figure of benchmarks/RESULTS.md in ONE command of under 9 minutes on one H100/H200 (a lent GPU machine
# gives about 15 minutes in all, start-up included, so the four scripts run back to back, each under its own limit,
# and a failing one does not stop the rest).
#   bash benchmarks/gpu.sh               # on the GPU machine; results (4 .txt + 4 .json) under $OUT
#   QUICK=1 bash benchmarks/gpu.sh       # the same script at --quick sizes, on a CPU: a smoke check, not a measurement
# The GPU machine has torch but not open_clip, ftfy, wcwidth, platformdirs or eai-sparsify: put their wheels in .whl/
# (benchmarks/README.md, "One GPU") and they are installed to /tmp/site first.
# Sizes (chosen to fit the lease, before any GPU figure was seen): the pipeline at CIFAR-100 sizes twice under a
# 15 GiB allocator cap (a 16 GB Colab T4); SAE n in {3072, 24576}, k 64, batch 4096; features ViT-B/32 at 32 px on
# 10,000 images; steering n in {3072, 24576}, 10k queries, a 50k bank, 50 neighbours.
set -u
OUT=${OUT:-/tmp/vs2mini-gpu}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu.sh: installing the wheels in .whl/ failed"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
if [ -n "${QUICK:-}" ]; then
  SCALE=(--quick --device cpu); R=(); SAE=(); STEER=(); FEAT=()
else
  SCALE=(); R=(--repeats 2 --mem-cap-gb 15)
  SAE=(--configs 3072:64,24576:64 --batch 4096 --steps 20 --repeats 3 --check-steps 50 --bank 50000)
  STEER=(--configs 3072:64,24576:64 --queries 10000 --dense-queries 10000 --bank 50000 --repeats 3)
  FEAT=(--models ViT-B-32-quickgelu --sizes 32 --n-small 10000 --batch 256 --repeats 3)
fi

bench() {   # bench NAME LIMIT_S ARGS...: one script, its whole output in $OUT/NAME.txt, its JSON in $OUT/NAME.json
  local name=$1 limit=$2; shift 2
  echo "=== bench_$name (start $(date +%T), limit ${limit} s)"
  timeout "$limit" python3 "benchmarks/bench_$name.py" --json "$OUT/$name.json" "${SCALE[@]}" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  echo "rc=$rc" >>"$OUT/$name.txt"
  grep -v '^\s*$' "$OUT/$name.txt" | tail -n 28
  echo "=== bench_$name rc=$rc (end $(date +%T))"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv 2>&1
  python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])"; } | tee "$OUT/machine.txt"
bench reproduce 200 "${R[@]}"
bench sae 130 "${SAE[@]}"
bench steer 90 "${STEER[@]}"
bench features 100 "${FEAT[@]}"
cat "$OUT/machine.txt" >>"$OUT/reproduce.txt" && rm "$OUT/machine.txt"    # at most 8 files come back
