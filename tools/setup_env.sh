#!/usr/bin/env bash
# Create (or reuse) the project's environment with the pinned OpenMMLab stack
# on the CPU:
#   torch 2.14.1 + torchvision 0.29.1, mmengine 0.10.7, mmcv 2.1.0 (built from
#   source with all its ops), mmpretrain 1.2.0, mmdet 3.3.0,
#   mmsegmentation 1.2.2, and the requirement files' extras.
#
# Two layers, so that a second checkout is ready in seconds:
#   1. the stack: one venv per (inputs of this script, Python version) under
#      $MMPVG_STACK_DIR, shared by every checkout of the project, built once;
#   2. the checkout's own venv ($MMPVG_VENV, default <repo>/.venv): a thin
#      venv that sees the stack's packages (a .pth file) and holds only the
#      editable install of this checkout's mmpvg.
# Each layer has a stamp (a hash of its inputs); a run with nothing changed
# returns at once. The mmcv wheel is built once per (torch, Python) and kept,
# because pip's own cache would reuse a wheel built against another torch.
#
# Environment variables:
#   MMPVG_VENV       the checkout's venv (default: <repo>/.venv)
#   MMPVG_PYTHON     interpreter the venvs are made with (default: python3)
#   MMPVG_STACK_DIR  root of the shared stacks (default: ~/.cache/mmpvg/stacks)
#   MMPVG_WHEEL_DIR  root of the mmcv wheel cache (default: ~/.cache/mmpvg/wheels)
#   MAX_JOBS         parallel compile jobs for mmcv (default: number of CPUs)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMPVG_VENV:-$ROOT/.venv}
PYTHON=${MMPVG_PYTHON:-python3}
STACK_ROOT=${MMPVG_STACK_DIR:-$HOME/.cache/mmpvg/stacks}
WHEEL_ROOT=${MMPVG_WHEEL_DIR:-$HOME/.cache/mmpvg/wheels}

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
site_of() {  # site_of VENV: its site-packages
    "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
STACK_ID=$( (echo "$PYVER"; cat "$ROOT/tools/setup_env.sh" "$ROOT/tools/build/"{pch_cxx.sh,mmcv_unity.py} \
    "$ROOT/requirements.txt" "$ROOT/requirements-tests.txt") | hash_of)
STACK=$STACK_ROOT/py$PYVER-$STACK_ID
VENV_ID=$( (echo "$STACK"; cat "$ROOT/pyproject.toml") | hash_of)
VENV_STAMP=$VENV/.mmpvg-setup-stamp
if [[ -f $VENV_STAMP && $(cat "$VENV_STAMP") == "$VENV_ID" && -f $STACK/.complete ]]; then
    echo "[setup] environment up to date: $VENV"
    exit 0
fi

start=$(date +%s)
phase_start=$start
phase() {  # phase NAME: log how long the previous phase took
    local now
    now=$(date +%s)
    echo "[setup] $1 ($(( now - phase_start )) s)"
    phase_start=$now
}

# mmcv 2.1.0 with ops, built once per (torch, Python) into the wheel cache.
build_mmcv_wheel() {  # build_mmcv_wheel PYTHON WHEEL_DIR
    local py=$1 out=$2 build src
    build=$(mktemp -d)
    src=$build/mmcv-$MMCV_VERSION
    "$py" -m pip download -q --disable-pip-version-check --no-deps \
        --no-build-isolation --no-binary mmcv "mmcv==$MMCV_VERSION" -d "$build"
    tar -xzf "$build/mmcv-$MMCV_VERSION.tar.gz" -C "$build"
    # torch >= 2.10 headers require C++20; mmcv 2.1.0 hard-codes c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    # Where the compile time goes (measured per unit): torch's headers,
    # parsed again by each of mmcv's 77 units, and debug info. So: mmcv's
    # 56 thin op wrappers as one unit, pybind.cpp first
    # (tools/build/mmcv_unity.py), Python's own CFLAGS with -g0 instead of
    # -g (same optimisation, same code, no debug sections), and one
    # precompiled pytorch_cpp_helper.hpp for the 21 units that include it
    # (tools/build/pch_cxx.sh).
    "$py" "$ROOT/tools/build/mmcv_unity.py" "$src"
    local cflags real_cxx=${CXX:-c++}
    cflags=$("$py" -c 'import sysconfig
f = (sysconfig.get_config_var("CFLAGS") or "").split()
print(" ".join(["-g0" if x == "-g" else x for x in f] + ["-g0"]))')
    mkdir -p "$out"
    (cd "$src" && CFLAGS=$cflags CXX="$ROOT/tools/build/pch_cxx.sh" \
        MMPVG_REAL_CXX=$real_cxx MMPVG_PCH_DIR="$build/pch" \
        MMPVG_PCH_HEADER="$src/mmcv/ops/csrc/common/pytorch_cpp_helper.hpp" \
        MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$py" -m pip wheel -q --disable-pip-version-check --no-build-isolation \
            --no-deps --no-cache-dir -w "$out.tmp" .)
    mv "$out.tmp"/mmcv-*.whl "$out"/ && rmdir "$out.tmp"
    rm -rf "$build"
}

# 1. The shared stack, under a lock: two checkouts set up at once build it once.
mkdir -p "$STACK_ROOT"
exec 9>"$STACK.lock"
flock 9
if [[ ! -f $STACK/.complete ]]; then
    echo "[setup] building the shared stack $STACK"
    rm -rf "$STACK"
    "$PYTHON" -m venv "$STACK"
    # pip byte-compiles what it installs (its default; keep it): where
    # PYTHONDONTWRITEBYTECODE is set, as on this project's machines, Python
    # never caches a .pyc itself, and with `--no-compile` every tool launch
    # compiled torch's and mmdet's modules again (the demo: 589 s, not ~400).
    SPIP=("$STACK/bin/python" -m pip --disable-pip-version-check)
    "${SPIP[@]}" install -q --upgrade pip 'setuptools<81' wheel
    # torch first: mmcv builds against it.
    "${SPIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
    phase 'pip: torch, torchvision'
    PYTAG=cp${PYVER/./}
    TORCH_TAG=$("$STACK/bin/python" -c 'import torch; print(torch.__version__.replace("+", "_"))')
    WHEEL_DIR=$WHEEL_ROOT/torch-$TORCH_TAG-$PYTAG
    shopt -s nullglob
    wheels=("$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl)
    if (( ${#wheels[@]} == 0 )); then
        echo "[setup] building mmcv $MMCV_VERSION with ops against torch $TORCH_TAG"
        build_mmcv_wheel "$STACK/bin/python" "$WHEEL_DIR"
        phase 'mmcv: wheel built'
        wheels=("$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl)
    fi
    "${SPIP[@]}" install -q "${wheels[0]}"
    "${SPIP[@]}" install -q -r "$ROOT/requirements.txt" -r "$ROOT/requirements-tests.txt"
    # transformers breaks `import mmpretrain.models`; it must not be present.
    "${SPIP[@]}" uninstall -q -y transformers >/dev/null 2>&1 || true
    phase 'pip: mmcv wheel and the requirement files'
    touch "$STACK/.complete"
fi
flock -u 9

# 2. The checkout's venv: the stack's packages plus this checkout's mmpvg.
STACK_SITE=$(site_of "$STACK")
if [[ ! -f $VENV/.mmpvg-overlay ]]; then
    # a venv of another layout (or none): make ours
    "$PYTHON" -m venv --clear --without-pip "$VENV"
    touch "$VENV/.mmpvg-overlay"
fi
VENV_SITE=$(site_of "$VENV")
# addsitedir (not a plain path line) so that the stack's own .pth files apply
echo "import site; site.addsitedir('$STACK_SITE')" > "$VENV_SITE/_mmpvg_stack.pth"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    --no-build-isolation -e "$ROOT"
phase 'venv of this checkout'

"$VENV/bin/python" - "$ROOT" <<'EOF'
import os.path as osp
import sys
import torch, torchvision, mmcv, mmengine, mmpretrain, mmdet, mmseg
from mmcv.ops import nms, roi_align, MultiScaleDeformableAttention  # noqa: F401
import mmpvg
assert osp.dirname(osp.dirname(mmpvg.__file__)) == sys.argv[1], mmpvg.__file__
print('[setup] torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmengine', mmengine.__version__,
      'mmpretrain', mmpretrain.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)
EOF
echo "$VENV_ID" > "$VENV_STAMP"
echo "[setup] done in $(( $(date +%s) - start )) s"
