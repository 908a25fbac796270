# Copyright (c) mmpvg contributors. All rights reserved.
"""Compile mmcv's thin op wrappers as one translation unit (a unity build).

Usage: python tools/build/mmcv_unity.py MMCV_SOURCE_DIR

Of mmcv 2.1.0's 77 CPU translation units, 56 are ``mmcv/ops/csrc/pytorch/
*.cpp`` (all but ``pybind.cpp``): each defines a few functions that check
their arguments and dispatch to the device's kernel, a second or less of
code after some 2.4 s spent loading torch's headers (even from the
precompiled header). They define no macro, nothing ``static`` and no
anonymous namespace, and include only ``pytorch_cpp_helper.hpp``,
``pytorch_device_registry.hpp`` and standard headers (the CUDA, HIP and
DIOPI includes are compiled out on the CPU), so one file that includes
them all compiles each function from the same text as before: torch's
headers are loaded once instead of 56 times.

This script writes that file beside them and makes mmcv's CPU-only
``setup.py`` compile it in place of the 56. ``pybind.cpp`` and the kernels
in ``cpu/`` stay separate translation units: the kernels reuse helper names
(``PreCalc``, ``bilinear_interpolate_gradient``) and one defines ``min``
and ``max`` macros. It refuses a source tree that is not the one above.
"""
import glob
import os.path as osp
import sys

FOLDER = 'mmcv/ops/csrc/pytorch'
# setuptools compiles the sources in sorted order: the 0_/1_ names start the
# longest unit (pybind.cpp, ~42 s) first and the wrappers second, so that the
# kernels fill both cores after them instead of pybind.cpp running alone at
# the end.
PYBIND_FIRST = FOLDER + '/0_pybind.cpp'
UNITY = FOLDER + '/1_wrappers_unity.cpp'
CPU_ONLY = """\
            print(f'Compiling {ext_name} only with CPU')
            op_files = glob.glob('./mmcv/ops/csrc/pytorch/*.cpp') + \\
                glob.glob('./mmcv/ops/csrc/pytorch/cpu/*.cpp')
"""
CPU_ONLY_UNITY = f"""\
            print(f'Compiling {{ext_name}} only with CPU')
            # mmpvg: the op wrappers as one translation unit
            op_files = ['./{PYBIND_FIRST}', './{UNITY}'] + \\
                glob.glob('./mmcv/ops/csrc/pytorch/cpu/*.cpp')
"""
NUM_WRAPPERS = 56


def wrappers(src: str) -> list:
    """The wrapper sources of ``src``, checked to be safe to concatenate."""
    names = sorted(
        osp.basename(p)
        for p in glob.glob(osp.join(src, FOLDER, '*.cpp'))
        if osp.basename(p) not in ('pybind.cpp', osp.basename(PYBIND_FIRST),
                                   osp.basename(UNITY)))
    if len(names) != NUM_WRAPPERS:
        raise SystemExit(f'mmcv_unity.py: expected {NUM_WRAPPERS} op '
                         f'wrappers in {src}, found {len(names)}: not the '
                         'mmcv 2.1.0 this build step was checked on.')
    for name in names:
        with open(osp.join(src, FOLDER, name)) as f:
            for line in f:
                if line.startswith(('#define', 'static ', 'namespace {')):
                    raise SystemExit(
                        f'mmcv_unity.py: {name} has {line.strip()!r}, which '
                        'would leak into the wrappers after it in one '
                        'translation unit; refusing the unity build.')
    return names


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.split('\n\n')[1])
    src = sys.argv[1]
    setup_py = osp.join(src, 'setup.py')
    with open(setup_py) as f:
        setup = f.read()
    if setup.count(CPU_ONLY) != 1:
        raise SystemExit(f'mmcv_unity.py: {setup_py} does not list the CPU '
                         'sources as mmcv 2.1.0 does; refusing to patch it.')
    lines = ['// Written by mmpvg tools/build/mmcv_unity.py: the op wrappers '
             'of this folder',
             '// in one translation unit (see there).',
             '#include "pytorch_cpp_helper.hpp"  // first: the precompiled '
             'header applies']
    lines += [f'#include "{name}"' for name in wrappers(src)]
    with open(osp.join(src, UNITY), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.join(src, PYBIND_FIRST), 'w') as f:
        f.write('// Written by mmpvg tools/build/mmcv_unity.py: pybind.cpp, '
                'compiled first.\n#include "pybind.cpp"\n')
    with open(setup_py, 'w') as f:
        f.write(setup.replace(CPU_ONLY, CPU_ONLY_UNITY))


if __name__ == '__main__':
    main()
