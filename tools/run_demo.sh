#!/usr/bin/env bash
# The main job on embedded data (nothing is downloaded):
#   1. pretrain a small MPVG classifier on the digits demo, print top-1;
#   2. fine-tune Mask R-CNN from it on the shapes demo (COCO format), print
#      box/mask AP before and after;
#   3. fine-tune UperNet from it on the shapes demo (ADE20K layout), print
#      mIoU before and after.
# Trainings use tools/train.py; the "after" numbers are each training's own
# final validation, the "before" numbers tools/test.py's code. Finished
# trainings are reused (and evaluated by tools/test.py); pass --retrain to
# train again.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DEMO_START=$(date +%s)
bash tools/setup_env.sh
PY=${MMPVG_VENV:-$ROOT/.venv}/bin/python
RETRAIN=0
[[ ${1:-} == --retrain ]] && RETRAIN=1

"$PY" tools/dataset_converters/make_demo_data.py --root data

# evaluate CONFIG CHECKPOINT LOG: tools/test.py, output kept in LOG
evaluate() {
    mkdir -p "$(dirname "$3")"
    "$PY" tools/test.py "$1" "$2" --work-dir "$(dirname "$3")/$(basename "$3" .log)" | tee "$3"
}

# fit CONFIG WORK_DIR FINAL_CHECKPOINT LABEL LOG: train with tools/train.py
# unless FINAL_CHECKPOINT is there; the final model's metrics go to LOG. A
# training run here validates the final model as it ends (on the val split,
# with the evaluator tools/test.py uses: the same numbers), so its output is
# the log; a finished training that is reused is evaluated by tools/test.py.
fit() {
    if [[ $RETRAIN == 1 || ! -f $3 ]]; then
        local start
        start=$(date +%s)
        # --retrain: start afresh over the old checkpoints; otherwise
        # continue an interrupted run (a new one if there is none)
        local how=--resume
        [[ $RETRAIN == 1 ]] && how=--force
        mkdir -p "$2"
        "$PY" tools/train.py "$1" --work-dir "$2" "$how" | tee "$5"
        echo "[demo] $4 training took $(( $(date +%s) - start )) s" | tee -a "$2/demo_times.log"
    else
        evaluate "$1" "$3" "$5"
    fi
}

# before CONFIG WORK_DIR [CONFIG WORK_DIR ...]: each model as fine-tuning
# starts (the demo classifier's backbone through the config's init_cfg,
# freshly initialised heads, seed 0), saved once as WORK_DIR/initial.pth and
# evaluated by tools/test.py's own code (which refuses a checkpoint that
# does not fit the whole model), its metrics in WORK_DIR/test_before.log;
# one process for all, so that the stack is imported once
before() {
    "$PY" - "$@" <<'EOF'
import os
import os.path as osp
import runpy
import sys

import torch
from mmengine.registry import MODELS, init_default_scope

import mmpvg  # noqa: F401
from mmpvg.utils.launch import load_config

test = runpy.run_path('tools/test.py')  # its functions; main() not run
pairs = sys.argv[1:]
for config, work_dir in zip(pairs[::2], pairs[1::2]):
    checkpoint = osp.join(work_dir, 'initial.pth')
    if not osp.isfile(checkpoint):
        cfg = load_config(config)
        init_default_scope(cfg.default_scope)
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        os.makedirs(work_dir, exist_ok=True)
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    sys.argv = ['tools/test.py', config, checkpoint,
                '--work-dir', osp.join(work_dir, 'test_before')]
    metrics = test['build'](test['parse_args']()).test()
    with open(osp.join(work_dir, 'test_before.log'), 'w') as f:
        f.writelines(f'{name}: {float(value):.4f}\n'
                     for name, value in metrics.items())
EOF
}

metric() {  # metric NAME LOG
    grep -o "$1: [0-9.]*" "$2" | tail -1 | cut -d' ' -f2
}

CLS_CFG=configs/demo/vit-demo-mpvg_1xb64-12e_demo-digits.py
CLS_WORK=work_dirs/demo/vit-demo-mpvg_1xb64-12e_demo-digits
CKPT=$CLS_WORK/epoch_12.pth
DET_CFG=configs/demo/mask-rcnn_vit-adapter-demo-mpvg_fpn_1xb2-3e_demo-shapes-96x96.py
DET_WORK=work_dirs/demo/mask-rcnn_vit-adapter-demo-mpvg_fpn_1xb2-3e_demo-shapes-96x96
SEG_CFG=configs/demo/upernet_vit-demo-mpvg_mln_1xb8-300_demo-shapes-64x64.py
SEG_WORK=work_dirs/demo/upernet_vit-demo-mpvg_mln_1xb8-300_demo-shapes-64x64

# 1. classification pretraining
fit "$CLS_CFG" "$CLS_WORK" "$CKPT" classification "$CLS_WORK/test.log"
top1=$(metric accuracy/top1 "$CLS_WORK/test.log")

# the detector and segmentor before fine-tuning: the pretrained backbone
# with untrained heads
before "$DET_CFG" "$DET_WORK" "$SEG_CFG" "$SEG_WORK"

# 2. detection: Mask R-CNN fine-tuned from the demo-pretrained backbone
fit "$DET_CFG" "$DET_WORK" "$DET_WORK/epoch_3.pth" detection "$DET_WORK/test.log"

# 3. segmentation: UperNet fine-tuned from the demo-pretrained backbone
fit "$SEG_CFG" "$SEG_WORK" "$SEG_WORK/iter_300.pth" segmentation "$SEG_WORK/test.log"

echo
echo "[demo] MPVG classifier, demo_digits val (10 classes, chance 10%): top-1 = ${top1}%"
echo "[demo] Mask R-CNN + MPVG, demo_shapes_coco val:" \
    "bbox mAP $(metric coco/bbox_mAP "$DET_WORK/test_before.log") before," \
    "$(metric coco/bbox_mAP "$DET_WORK/test.log") after fine-tuning;" \
    "segm mAP $(metric coco/segm_mAP "$DET_WORK/test_before.log") before," \
    "$(metric coco/segm_mAP "$DET_WORK/test.log") after"
echo "[demo] UperNet + MPVG, demo_shapes_ade val (6 classes):" \
    "mIoU $(metric mIoU "$SEG_WORK/test_before.log") before," \
    "$(metric mIoU "$SEG_WORK/test.log") after fine-tuning"
echo "[demo] done in $(( $(date +%s) - DEMO_START )) s"
