# Copyright (c) mmpvg contributors. All rights reserved.
"""Helpers of the test suite that run the project's tools as a user would.

Like ``mmdet.testing``: imported by tests only, never by ``import mmpvg``.
"""
import os
import os.path as osp
import subprocess
import sys

__all__ = ['REPO_ROOT', 'TOOL_TIMEOUT', 'load_tool', 'run_tool',
           'save_untrained']

# The checkout this package lives in (tools/, configs/ beside mmpvg/).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# A guard against a hung subprocess, never a time budget: the slowest tool
# run of the suite takes ~15 min on the slowest machines CI may use (2.5x
# slower than the fastest), so a test can only fail by it when it hangs.
TOOL_TIMEOUT = 3600


def load_tool(path):
    """Import a tool script (``tools/.../x.py``, relative to the checkout)
    as a module, to call its functions in-process.

    Returns:
        module: The script, imported under a name of its own (not
        ``__main__``, so it does not run).
    """
    import importlib.util
    name = '_tool_' + osp.splitext(path)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(args, cwd=REPO_ROOT, timeout=TOOL_TIMEOUT, env=None,
             check=True):
    """Run a project command (``tools/x.py`` or ``tools/x.sh``) with this
    interpreter, one intra-op thread and this checkout first on the path.

    Returns:
        subprocess.CompletedProcess: With text ``stdout`` and ``stderr``.

    Raises:
        AssertionError: With both outputs' tails, if ``check`` and the
            command fails.
    """
    full_env = dict(os.environ, PYTHONPATH=REPO_ROOT, PYTHON=sys.executable,
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
    cfg = load_config(osp.join(REPO_ROOT, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)  # in the default scope, as the Runner
    model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
