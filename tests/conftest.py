import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# A guard against a hung subprocess, never a time budget: the slowest tool run
# of the suite takes ~15 min on the slowest machines CI may use (2.5x slower
# than the fastest), so a test can only fail by this guard when it hangs.
TOOL_TIMEOUT = 3600


def run_tool(args, cwd=ROOT, timeout=TOOL_TIMEOUT, env=None, check=True):
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


def save_untrained(config, path):
    """Save the freshly initialised model of a project config (seed 0, no
    pretrained backbone) as a checkpoint that tools/test.py loads."""
    import torch
    from mmengine.registry import MODELS, init_default_scope

    from mmpvg.utils.launch import load_config
    cfg = load_config(osp.join(ROOT, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)  # in the default scope, as the Runner
    model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)


@pytest.fixture(autouse=True, scope='session')
def one_thread():
    """The tests use tiny tensors: one intra-op thread is faster than two
    (threads wait on each other at every op), and far faster on a busy CPU."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Tests may init_default_scope('mmseg') etc.; never let that leak into
    the next test (a registry's build follows the current default scope)."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


@pytest.fixture(scope='session')
def demo_digits(tmp_path_factory):
    """The embedded classification demo data, written once per session."""
    from mmpvg.demo import make_digits_classification
    root = str(tmp_path_factory.mktemp('data') / 'demo_digits')
    make_digits_classification(root)
    return root


@pytest.fixture(scope='session')
def demo_shapes_coco(tmp_path_factory):
    """The embedded detection demo data (COCO format), written once."""
    from mmpvg.demo import make_shapes_coco
    root = str(tmp_path_factory.mktemp('data') / 'demo_shapes_coco')
    make_shapes_coco(root)
    return root
