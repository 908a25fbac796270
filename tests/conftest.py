import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_tool(args, cwd=ROOT, timeout=900, env=None, check=True):
    """Run a project command with this interpreter; return CompletedProcess."""
    full_env = dict(os.environ, PYTHONPATH=ROOT, PYTHON=sys.executable,
                    OMP_NUM_THREADS='1')
    full_env.update(env or {})
    if args[0].endswith('.py'):
        args = [sys.executable] + list(args)
    else:
        args = ['bash'] + list(args)
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(args)} exited {proc.returncode}\n'
            f'--- stdout ---\n{proc.stdout[-6000:]}\n'
            f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


@pytest.fixture(scope='session')
def demo_digits(tmp_path_factory):
    """The embedded classification demo data, written once per session."""
    from mmpvg.datasets import make_digits_classification
    root = str(tmp_path_factory.mktemp('data') / 'demo_digits')
    make_digits_classification(root)
    return root
