#!/usr/bin/env bash
# Create (or reuse) the project-local virtual environment with the pinned
# OpenMMLab stack on the CPU:
#   torch 2.14.1 + torchvision 0.29.1, mmengine 0.10.7, mmcv 2.1.0 (built from
#   source with its ops), mmpretrain 1.2.0, mmdet 3.3.0, mmsegmentation 1.2.2.
#
# Idempotent: a stamp in the venv records a hash of the inputs of this script,
# so a second run returns at once. The mmcv wheel is built once and kept in a
# cache keyed by the torch version and the Python tag, because pip's own wheel
# cache would silently reuse a wheel built against another torch.
#
# Environment variables:
#   MMPVG_VENV       venv location (default: <repo>/.venv)
#   MMPVG_PYTHON     interpreter used to create the venv (default: python3)
#   MMPVG_WHEEL_DIR  root of the mmcv wheel cache (default: ~/.cache/mmpvg/wheels)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMPVG_VENV:-$ROOT/.venv}
PYTHON=${MMPVG_PYTHON:-python3}
WHEEL_ROOT=${MMPVG_WHEEL_DIR:-$HOME/.cache/mmpvg/wheels}

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

stamp_inputs() {
    cat "$ROOT/tools/setup_env.sh" "$ROOT/requirements.txt" \
        "$ROOT/requirements-tests.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1
}
STAMP_FILE=$VENV/.mmpvg-setup-stamp
WANT=$(stamp_inputs)
if [[ -f $STAMP_FILE && $(cat "$STAMP_FILE") == "$WANT" ]]; then
    echo "[setup] environment up to date: $VENV"
    exit 0
fi

start=$(date +%s)
echo "[setup] creating/updating $VENV"
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip 'setuptools<81' wheel

# 1. torch first: mmcv builds against it.
"${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

# 2. mmcv 2.1.0 with ops, built once per (torch, python) pair.
PYTAG=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
TORCH_TAG=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.replace("+", "_"))')
WHEEL_DIR=$WHEEL_ROOT/torch-$TORCH_TAG-$PYTAG
shopt -s nullglob
wheels=("$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl)
if (( ${#wheels[@]} == 0 )); then
    echo "[setup] building mmcv $MMCV_VERSION with ops against torch $TORCH_TAG (takes ~8 min on 2 cores)"
    build=$(mktemp -d)
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary mmcv "mmcv==$MMCV_VERSION" -d "$build"
    tar -xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
    # torch >= 2.10 headers require C++20; mmcv 2.1.0 hard-codes c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$build/mmcv-$MMCV_VERSION/setup.py"
    mkdir -p "$WHEEL_DIR"
    (cd "$build/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} \
        "${PIP[@]}" wheel -q --no-build-isolation --no-deps --no-cache-dir -w "$WHEEL_DIR.tmp" .)
    mv "$WHEEL_DIR.tmp"/mmcv-*.whl "$WHEEL_DIR"/ && rmdir "$WHEEL_DIR.tmp"
    rm -rf "$build"
    wheels=("$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl)
fi
"${PIP[@]}" install -q "${wheels[0]}"

# 3. The rest of the stack, the test extras and mmpvg itself (editable).
"${PIP[@]}" install -q -r "$ROOT/requirements.txt" -r "$ROOT/requirements-tests.txt"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
# transformers breaks `import mmpretrain.models`; it must not be present.
"${PIP[@]}" uninstall -q -y transformers >/dev/null 2>&1 || true

"$VENV/bin/python" - <<'EOF'
import torch, torchvision, mmcv, mmengine, mmpretrain, mmdet, mmseg
from mmcv.ops import nms, roi_align, MultiScaleDeformableAttention  # noqa: F401
import mmpvg  # noqa: F401
print('[setup] torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmengine', mmengine.__version__,
      'mmpretrain', mmpretrain.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)
EOF
echo "$WANT" > "$STAMP_FILE"
echo "[setup] done in $(( $(date +%s) - start )) s"
