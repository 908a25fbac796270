#!/usr/bin/env bash
# The main job on embedded data: set up the environment if needed, write the
# demo data, pretrain a small MPVG classifier on it, evaluate it with
# tools/test.py and print its top-1.
# A finished demo training is reused; pass --retrain to train again.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash tools/setup_env.sh
PY=${MMPVG_VENV:-$ROOT/.venv}/bin/python
RETRAIN=0
[[ ${1:-} == --retrain ]] && RETRAIN=1

"$PY" tools/dataset_converters/make_demo_data.py --root data

CFG=configs/demo/mpvg-tiny_1xb64_demo-digits.py
WORK=work_dirs/demo/mpvg-tiny_1xb64_demo-digits
CKPT=$WORK/epoch_30.pth
if [[ $RETRAIN == 1 || ! -f $CKPT ]]; then
    start=$(date +%s)
    "$PY" tools/train.py "$CFG" --work-dir "$WORK"
    echo "[demo] classification training took $(( $(date +%s) - start )) s"
fi
"$PY" tools/test.py "$CFG" "$CKPT" --work-dir "$WORK/test" | tee "$WORK/test.log"
top1=$(grep -o 'accuracy/top1: [0-9.]*' "$WORK/test.log" | tail -1 | cut -d' ' -f2)
echo "[demo] MPVG classifier on demo_digits val (10 classes, chance 10%): top-1 = ${top1}%"
