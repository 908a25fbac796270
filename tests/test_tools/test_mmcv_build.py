"""The mmcv build steps of tools/setup_env.sh, on small stand-ins: the unity
step (tools/build/mmcv_unity.py) on a fake mmcv tree, the precompiled-header
wrapper (tools/build/pch_cxx.sh) around a fake compiler that records how it
was called."""
import os
import os.path as osp
import stat
import subprocess
import sys

import pytest

from mmpvg.testing import REPO_ROOT

UNITY = osp.join(REPO_ROOT, 'tools', 'build', 'mmcv_unity.py')
PCH_CXX = osp.join(REPO_ROOT, 'tools', 'build', 'pch_cxx.sh')
# mmcv 2.1.0's setup.py, the CPU-only branch
SETUP = """\
        else:
            print(f'Compiling {ext_name} only with CPU')
            op_files = glob.glob('./mmcv/ops/csrc/pytorch/*.cpp') + \\
                glob.glob('./mmcv/ops/csrc/pytorch/cpu/*.cpp')
            extension = CppExtension
"""


def _mmcv_tree(root, num_wrappers=56, extra_line=''):
    ops = root / 'mmcv' / 'ops' / 'csrc' / 'pytorch'
    (ops / 'cpu').mkdir(parents=True)
    (root / 'setup.py').write_text(SETUP)
    (ops / 'pybind.cpp').write_text('#include <torch/extension.h>\n')
    (ops / 'cpu' / 'nms.cpp').write_text('#include "pytorch_cpp_helper.hpp"\n')
    for i in range(num_wrappers):
        (ops / f'op{i:02d}.cpp').write_text(
            '#include "pytorch_cpp_helper.hpp"\n' +
            (extra_line if i == 7 else '') + f'void op{i}() {{}}\n')
    return ops


def _unity(root):
    return subprocess.run([sys.executable, UNITY, str(root)],
                          capture_output=True, text=True)


def test_unity_writes_one_unit_and_pybind_first(tmp_path):
    ops = _mmcv_tree(tmp_path)
    proc = _unity(tmp_path)
    assert proc.returncode == 0, proc.stderr
    unit = (ops / '1_wrappers_unity.cpp').read_text().splitlines()
    assert unit[2].startswith('#include "pytorch_cpp_helper.hpp"')
    assert unit[3:] == [f'#include "op{i:02d}.cpp"' for i in range(56)]
    assert (ops / '0_pybind.cpp').read_text().endswith(
        '#include "pybind.cpp"\n')
    setup = (tmp_path / 'setup.py').read_text()
    assert "op_files = ['./mmcv/ops/csrc/pytorch/0_pybind.cpp', " \
        "'./mmcv/ops/csrc/pytorch/1_wrappers_unity.cpp'] + \\\n" \
        "                glob.glob('./mmcv/ops/csrc/pytorch/cpu/*.cpp')" \
        in setup
    # a second run finds a setup.py it did not expect and changes nothing
    proc = _unity(tmp_path)
    assert proc.returncode == 1
    assert 'does not list the CPU sources as mmcv 2.1.0 does; refusing ' \
        'to patch it' in proc.stderr
    assert (tmp_path / 'setup.py').read_text() == setup


@pytest.mark.parametrize('extra_line, num, message', [
    ('#define CHECK(x) x\n', 56,
     "op07.cpp has '#define CHECK(x) x', which would leak into the "
     'wrappers after it in one translation unit; refusing the unity build'),
    ('static int count = 0;\n', 56, "op07.cpp has 'static int count = 0;'"),
    ('namespace {\n}\n', 56, "op07.cpp has 'namespace {'"),
    ('', 55, 'expected 56 op wrappers in'),
])
def test_unity_refuses_wrappers_it_cannot_join(tmp_path, extra_line, num,
                                               message):
    ops = _mmcv_tree(tmp_path, num, extra_line)
    proc = _unity(tmp_path)
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    assert (tmp_path / 'setup.py').read_text() == SETUP
    assert not (ops / '1_wrappers_unity.cpp').exists()


def _fake_cxx(tmp_path):
    """A compiler that logs each call's arguments and writes its -o file."""
    log = tmp_path / 'calls.log'
    cxx = tmp_path / 'fake-c++'
    cxx.write_text(
        '#!/usr/bin/env bash\n'
        f'echo "$*" >> {log}\n'
        'while (( $# )); do [[ $1 == -o ]] && touch "$2"; shift; done\n')
    cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
    return cxx, log


def _compile(tmp_path, cxx, source_text, name='unit.cpp'):
    src = tmp_path / name
    src.write_text(source_text)
    header = tmp_path / 'include' / 'pytorch_cpp_helper.hpp'
    header.parent.mkdir(exist_ok=True)
    header.write_text('#pragma once\n')
    env = dict(os.environ, MMPVG_REAL_CXX=str(cxx),
               MMPVG_PCH_HEADER=str(header),
               MMPVG_PCH_DIR=str(tmp_path / 'pch'))
    return subprocess.run(
        ['bash', PCH_CXX, '-O3', '-c', str(src), '-o', str(src) + '.o'],
        capture_output=True, text=True, env=env)


def test_pch_for_a_unit_that_starts_with_the_header(tmp_path):
    cxx, log = _fake_cxx(tmp_path)
    proc = _compile(tmp_path, cxx, '#include "pytorch_cpp_helper.hpp"\n')
    assert proc.returncode == 0, proc.stderr
    precompile, compile_ = log.read_text().splitlines()
    assert precompile.startswith('-O3 -x c++-header ')
    assert (tmp_path / 'pch' / 'pytorch_cpp_helper.hpp.gch').is_file()
    assert compile_.startswith(f'-I{tmp_path}/pch -Winvalid-pch -O3 -c ')
    assert '-include' not in compile_


def test_pch_forced_first_where_the_header_comes_later(tmp_path):
    cxx, log = _fake_cxx(tmp_path)
    proc = _compile(tmp_path, cxx, '#include <vector>\n'
                    '#include "pytorch_cpp_helper.hpp"\n')
    assert proc.returncode == 0, proc.stderr
    compile_ = log.read_text().splitlines()[-1]
    assert compile_.startswith(
        f'-I{tmp_path}/pch -Winvalid-pch -include '
        f'{tmp_path}/pch/pytorch_cpp_helper.hpp -O3 -c ')


@pytest.mark.parametrize('text', [
    '#include <torch/extension.h>\n#include "pytorch_cpp_helper.hpp"\n',
    '#include "pybind.cpp"\n',
])
def test_plain_compile_without_waiting_for_the_pch(tmp_path, text):
    cxx, log = _fake_cxx(tmp_path)
    proc = _compile(tmp_path, cxx, text)
    assert proc.returncode == 0, proc.stderr
    src = tmp_path / 'unit.cpp'
    assert log.read_text() == f'-O3 -c {src} -o {src}.o\n'
    assert not (tmp_path / 'pch').exists()


def test_pch_wrapper_refuses_to_wrap_itself(tmp_path):
    proc = _compile(tmp_path, PCH_CXX, '#include "pytorch_cpp_helper.hpp"\n')
    assert proc.returncode == 2
    assert 'MMPVG_REAL_CXX must name the real compiler, not this wrapper' \
        in proc.stderr
