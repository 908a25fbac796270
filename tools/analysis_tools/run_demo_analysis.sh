#!/usr/bin/env bash
# Regenerate README's "Analysis" figures: train the CPU demo classifier in
# every pe_mode (reusing finished runs), run the PE analysis on each
# checkpoint with 64 validation images, plot the per-layer correlations of
# all modes on one figure and copy the figures to docs/figures/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
bash tools/setup_env.sh
PY=${MMPVG_VENV:-$ROOT/.venv}/bin/python
"$PY" tools/dataset_converters/make_demo_data.py --root data --only digits

jsons=()
for mode in cls gap lape pvg mpvg; do
    name=vit-demo-${mode}_1xb64_demo-digits
    work=work_dirs/demo/$name
    if [[ ! -f $work/epoch_30.pth ]]; then
        "$PY" tools/train.py "configs/demo/$name.py" --work-dir "$work" \
            --resume  # continues an interrupted run, or starts one
    fi
    "$PY" tools/analysis_tools/analyze_pe.py "configs/demo/$name.py" \
        "$work/epoch_30.pth" --img-dir data/demo_digits/val --num-images 64 \
        --layers 1 3 5 --out-dir "work_dirs/pe_analysis/$mode" --force
    jsons+=("work_dirs/pe_analysis/$mode/pe_analysis.json")
done
"$PY" tools/analysis_tools/plot_pe_correlation.py "${jsons[@]}" \
    --out work_dirs/pe_analysis/pe_correlation_demo.png --force \
    --title 'PE / token-map correlation per block (demo digits)'

mkdir -p docs/figures
cp work_dirs/pe_analysis/pe_correlation_demo.png docs/figures/
for mode in pvg mpvg; do
    cp "work_dirs/pe_analysis/$mode/layer05_maps.png" "docs/figures/${mode}_layer05_maps.png"
    cp "work_dirs/pe_analysis/$mode/norm_maps.png" "docs/figures/${mode}_norm_maps.png"
done
"$PY" - <<'PY'
import json
rows = []
for mode in ('cls', 'gap', 'lape', 'pvg', 'mpvg'):
    r = json.load(open(f'work_dirs/pe_analysis/{mode}/pe_analysis.json'))
    corr = ' '.join('-' if c is None else f'{c:+.3f}' for c in r['correlation'])
    cos = r['last_ln']['cosine_before_after_ln']['per_image_mean']
    rows.append(f"| {mode} | {corr} | {r['last_ln']['bias_variance']:.4f} | {cos:.3f} |")
print('| pe_mode | correlation, blocks 0..5 | Last-LN bias variance | cos(avg before, avg after Last LN) |')
print('|---|---|---|---|')
print('\n'.join(rows))
PY
