#!/usr/bin/env bash
# The demo PE-mode comparison (README "Comparing PE modes"): the digits demo
# classifier in all five modes (configs/demo/vit-demo-<mode>_1xb64_demo-digits.py)
# with seeds 0 1 2 at a short budget (9 of the recipe's 30 epochs, its
# 3 warm-up epochs kept, validation every 3 epochs), one training after the
# other through tools/train.py: ~13 min on 2 idle cores. Writes
# work_dirs/compare/demo-digits/comparison.{md,json,png}; finished runs are
# kept and an interrupted comparison continues where it stopped.
# Extra arguments go to compare_pe_modes.py (e.g. --force to replace the
# result files of an earlier comparison, --baseline pvg).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
bash tools/setup_env.sh
PY=${MMPVG_VENV:-$ROOT/.venv}/bin/python
"$PY" tools/dataset_converters/make_demo_data.py --root data --only digits

"$PY" tools/analysis_tools/compare_pe_modes.py \
    configs/demo/vit-demo-{cls,gap,lape,pvg,mpvg}_1xb64_demo-digits.py \
    --seeds 0 1 2 --epochs 9 --val-interval 3 \
    --out-dir work_dirs/compare/demo-digits "$@"
