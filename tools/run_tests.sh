#!/usr/bin/env bash
# Set up the environment if needed and run the whole test suite on the CPU,
# one pytest worker per core (MMPVG_TEST_WORKERS=N to choose, 0 for none).
# Extra arguments go to pytest (e.g. -k resume, -x).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash tools/setup_env.sh
exec "${MMPVG_VENV:-$ROOT/.venv}/bin/python" -m pytest tests \
    -n "${MMPVG_TEST_WORKERS:-auto}" --dist worksteal "$@"
