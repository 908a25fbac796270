#!/usr/bin/env bash
# Download the GPU check's offline bundle into gpu_bundle/ (run here, with
# network): the pinned wheels of the stack for CPython 3.12 manylinux x86-64
# and the mmcv 2.1.0 sdist, within 63 MiB together with the tracked tree
# (the GPU machine receives at most 64 MiB). Prints the size and what did not
# fit. Options: see `python tools/gpu_check.py prepare --help`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
exec "$PY" "$ROOT/tools/gpu_check.py" prepare "$@"
