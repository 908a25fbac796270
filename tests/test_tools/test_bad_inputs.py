# Copyright (c) mmpvg contributors. All rights reserved.
"""Bad inputs to the tools give one clear error (issue 11).

The checks that live in library functions are tested there (tests/
test_utils/test_launch.py, tests/test_models/test_backbones/
test_bad_arguments.py, tests/test_datasets/); here only what needs the tool
itself: which ``mmpvg`` a tool imports, and the shell launchers.
"""
import ast
import glob
import os.path as osp

import pytest

from mmpvg.testing import REPO_ROOT, run_tool

TOOLS = sorted(glob.glob(osp.join(REPO_ROOT, 'tools', '**', '*.py'),
                         recursive=True))


def _imports_mmpvg(node) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name.split('.')[0] == 'mmpvg' for a in node.names)
    return (isinstance(node, ast.ImportFrom) and node.module is not None
            and node.module.split('.')[0] == 'mmpvg')


@pytest.mark.parametrize('path', TOOLS,
                         ids=[osp.relpath(p, REPO_ROOT) for p in TOOLS])
def test_every_tool_puts_its_checkout_first(path):
    """Before its first ``mmpvg`` import, a tool run as a script inserts its
    own checkout at sys.path[0] (the directory that holds ``mmpvg/``)."""
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if _imports_mmpvg(node):
            pytest.fail(f'{path} imports mmpvg before putting its checkout '
                        'first on sys.path')
        if isinstance(node, ast.If) and 'sys.path.insert' in ast.unparse(
                node):
            # the same expression, evaluated for this file
            expr = ast.unparse(node.body[0].value.args[1])
            root = eval(expr, dict(osp=osp, __file__=path))
            assert osp.samefile(root, REPO_ROOT), (path, root)
            return


@pytest.fixture
def other_checkout(tmp_path):
    """Another checkout's ``mmpvg`` on PYTHONPATH, as a user with two clones
    and PYTHONPATH set for one of them has."""
    fake = tmp_path / 'mmpvg'
    fake.mkdir()
    (fake / '__init__.py').write_text(
        "raise ImportError('the other checkout was imported')\n")
    return dict(PYTHONPATH=str(tmp_path))


def test_train_imports_its_own_checkout(other_checkout, tmp_path):
    proc = run_tool(['tools/train.py', str(tmp_path / 'missing.py')],
                    env=other_checkout, check=False)
    assert proc.returncode != 0
    assert 'the other checkout was imported' not in proc.stderr
    assert "Config file '" in proc.stderr and "does not exist" in proc.stderr


def test_converter_imports_its_own_checkout(other_checkout):
    """A tool one folder deeper finds the same root."""
    proc = run_tool(['tools/model_converters/lape2mpvg.py', '--help'],
                    env=other_checkout, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'the other checkout was imported' not in proc.stderr


@pytest.mark.parametrize('script, args', [
    ('tools/dist_train.sh', ['cfg.py', '0']),
    ('tools/dist_test.sh', ['cfg.py', 'ckpt.pth', 'two']),
])
def test_dist_scripts_refuse_a_bad_process_count(script, args):
    """This was a bare AssertionError from torchrun (issue 11)."""
    proc = run_tool([script] + args, check=False)
    assert proc.returncode == 2
    assert 'error: NUM_PROCS must be a whole number >= 1' in proc.stderr
    assert proc.stderr.rstrip().endswith(f"got '{args[-1]}'")


def test_dist_scripts_use_the_project_venv(tmp_path):
    """Without $PYTHON the launcher runs $MMPVG_VENV/bin/python."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.write_text('#!/bin/sh\necho "venv python $*"\n')
    python.chmod(0o755)
    proc = run_tool(['tools/dist_train.sh', 'cfg.py', '1'], check=False,
                    env=dict(PYTHON='', MMPVG_VENV=str(venv)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('venv python -m torch.distributed.run')
    assert '--nproc_per_node=1' in proc.stdout and 'cfg.py' in proc.stdout


@pytest.mark.parametrize('tool,args,message', [
    ('tools/train.py', ['--cfg-options', 'model.backbone.patch_size=0'],
     'patch_size'),
    ('tools/train.py', ['--cfg-options', 'trian_cfg.max_epochs=1'],
     "Did you mean 'train_cfg'"),
    ('tools/test.py', ['missing.pth'], "Checkpoint 'missing.pth' does not "
     'exist.'),
])
def test_tool_errors_are_one_line(tool, args, message, tmp_path):
    """A bad input ends the tool with ``tool: error: ...`` and no
    traceback; MMPVG_DEBUG=1 brings the traceback back."""
    cmd = [tool, 'configs/demo/vit-demo-mpvg_1xb64_demo-digits.py'] + args
    proc = run_tool(cmd + ['--work-dir', str(tmp_path)], check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f'{osp.basename(tool)}: error: '), lines
    assert message in lines[-1]
    assert 'Traceback' not in proc.stderr
    assert not list(tmp_path.rglob('*.pth'))  # no checkpoint written
    debug = run_tool(cmd + ['--work-dir', str(tmp_path)], check=False,
                     env=dict(MMPVG_DEBUG='1'))
    assert debug.returncode != 0 and 'Traceback' in debug.stderr
