#!/usr/bin/env bash
# Set up the environment if needed and run the whole test suite on the CPU.
# Extra arguments go to pytest (e.g. -k resume, -x).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash tools/setup_env.sh
exec "${MMPVG_VENV:-$ROOT/.venv}/bin/python" -m pytest tests "$@"
