#!/usr/bin/env bash
# The GPU check (run on the GPU machine, no network, under 8 minutes): install
# the bundled wheels (gpu_bundle/, made by tools/gpu_check_prepare.sh) over
# the machine's torch, build mmcv with CUDA ops for its architecture, run
# tests/test_gpu and the benchmark against timm and mmpretrain on CUDA.
# Results, logs and timings go to $OUT (or --out DIR).
# Options: see `python3 tools/gpu_check.py run --help`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
cd "$ROOT"
exec "$PY" tools/gpu_check.py run "$@"
