#!/usr/bin/env bash
# C++ compiler wrapper that tools/setup_env.sh puts in $CXX while it builds
# mmcv's CPU ops: the same compiler and the same flags, plus one precompiled
# header.
#
# mmcv's CPU build has 22 translation units (tools/build/mmcv_unity.py
# makes one of its 56 op wrappers): pybind.cpp, the wrappers' unit and 20
# kernels. All include "pytorch_cpp_helper.hpp", which pulls in torch's
# headers; parsing them is most of each unit's compile time. The first unit
# that uses it (below) precompiles that header with exactly the flags of its
# compile (under a lock, so parallel jobs wait for it) into $MMPVG_PCH_DIR,
# which is put first on the include path: GCC uses `<dir>/<header>.gch` in
# place of the header wherever the header comes first in a unit (the
# wrappers' unit and 9 kernels), and parses the header as usual anywhere
# else (or if the flags ever differed: -Winvalid-pch says so in the build
# log). The object code is the same; the .gch never enters the source tree,
# so it cannot end up in the wheel.
#
# Environment:
#   MMPVG_REAL_CXX    the compiler to run (default: c++)
#   MMPVG_PCH_HEADER  absolute path of the header to precompile
#   MMPVG_PCH_DIR     directory for the .gch (created)
set -euo pipefail
REAL=${MMPVG_REAL_CXX:-c++}
if [[ $(command -v "$REAL") -ef ${BASH_SOURCE[0]} ]]; then
    echo "pch_cxx.sh: MMPVG_REAL_CXX must name the real compiler, not this wrapper" >&2
    exit 2
fi
args=("$@")
src=
for arg in "$@"; do
    if [[ $arg == *.cpp ]]; then src=$arg; fi
done
# Not a C++ compile (a link, `-v`, `--version`): pass through.
if [[ $src != *.cpp || -z ${MMPVG_PCH_HEADER:-} || -z ${MMPVG_PCH_DIR:-} ]]; then
    exec "$REAL" "$@"
fi

# Which units use the header: those that start with it, as they are; 11
# kernels include it after a few lighter ones (standard headers,
# ATen/ATen.h, torch/script.h, box_iou_rotated_utils.hpp) and get it first
# with -include, from the copy beside the .gch (their own #include is then a
# no-op: the header is include-guarded); their disassembly is the same with
# and without (README). Not pybind.cpp, which starts with torch/extension.h
# (there the order moves functions around): it, and any unit without the
# header, compiles as without this wrapper, and does not wait for the
# precompile, so that the long pybind.cpp starts at once.
name=$(basename "$MMPVG_PCH_HEADER")
first=$(grep -m1 -o '^#include *[<"][^>"]*' "$src" | sed 's/^#include *[<"]//')
force=()
if [[ $first != "$name" ]]; then
    if [[ $first == torch/extension.h ]] || ! grep -q "^#include *\"$name\"" "$src"; then
        exec "$REAL" "$@"
    fi
    force=(-include "$MMPVG_PCH_DIR/$name")
fi

mkdir -p "$MMPVG_PCH_DIR"
gch=$MMPVG_PCH_DIR/$name.gch
if [[ ! -f $gch ]]; then
    # The compile's own flags, without its input, output and depfile.
    flags=()
    for ((i = 0; i < ${#args[@]}; i++)); do
        case ${args[i]} in
            -o | -MF) ((i += 1)) ;;
            -c | -MMD | -MD | "$src") ;;
            *) flags+=("${args[i]}") ;;
        esac
    done
    (
        flock 9
        if [[ ! -f $gch ]]; then
            "$REAL" "${flags[@]}" -x c++-header "$MMPVG_PCH_HEADER" -o "$gch.tmp"
            cp "$MMPVG_PCH_HEADER" "$MMPVG_PCH_DIR/"
            mv "$gch.tmp" "$gch"
        fi
    ) 9>"$gch.lock"
fi
exec "$REAL" -I"$MMPVG_PCH_DIR" -Winvalid-pch "${force[@]}" "$@"
