"""mmpvg.datasets and mmpvg.demo import no task package by themselves.

The dataset classes import mmdet / mmseg, so configs import their modules
explicitly; the packages themselves must stay as light as ``import mmpvg``.
"""
import subprocess
import sys

from mmpvg.testing import REPO_ROOT

CODE = """
import sys
import mmpvg
before = set(sys.modules)
import mmpvg.datasets, mmpvg.demo
new = sorted(set(sys.modules) - before)
heavy = [m for m in new if m.split('.')[0] in ('mmdet', 'mmseg', 'mmcv')]
print(heavy)
"""


def test_packages_import_no_task_package():
    out = subprocess.run([sys.executable, '-c', CODE], cwd=REPO_ROOT, text=True,
                         capture_output=True, check=True).stdout
    assert out.strip().splitlines()[-1] == '[]', out
