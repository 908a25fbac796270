"""tools/gpu_check.py on the CPU: the bundle's budget, the plan, the
inventory and a run that stops cleanly without a GPU. (The GPU phases
themselves are tests/test_gpu/test_gpu_*.py, run on the GPU machine.)"""
import json
import os.path as osp
import sys

import pytest

from mmpvg.testing import REPO_ROOT, run_tool

sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
import gpu_check  # noqa: E402


def test_bundle_keeps_items_in_order_while_they_fit():
    kept, skipped = gpu_check.choose_within_budget(
        [('core', 10), ('numpy', 50), ('pillow', 5), ('cv2', 6)], 20)
    assert kept == ['core', 'pillow'] and skipped == ['numpy', 'cv2']


def test_prepare_plan_fits_the_tree_in_64_mib(capsys):
    plan = gpu_check.main(['prepare', '--dry-run'])
    assert plan['sdist'] == 'mmcv==2.1.0'
    for pkg in ('mmengine==', 'mmpretrain==', 'mmdet==', 'mmsegmentation==',
                'timm=='):
        assert any(s.startswith(pkg) for s in plan['core']), pkg
    assert not any(s.startswith('torch') for s in plan['core'] + plan['heavy'])
    # the budget left for the bundle is 63 MiB minus the tracked tree
    assert 50 < plan['budget_mib'] < 63
    assert json.loads(capsys.readouterr().out) == plan


def test_run_plan_builds_for_the_h200_only(tmp_path, capsys):
    gpu_check.main(['run', '--dry-run', '--out', str(tmp_path)])
    plan = json.loads(capsys.readouterr().out)
    assert set(gpu_check.PHASES) <= set(plan)
    assert 'TORCH_CUDA_ARCH_LIST=9.0' in plan['mmcv']
    assert 'MMCV_WITH_OPS=1' in plan['mmcv'] and 'FORCE_CUDA=1' in plan['mmcv']
    assert plan['budget_s'] < 8 * 60
    assert 'tests/test_gpu' in plan['tests']
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_prepare_leaves_out_what_the_machine_has(capsys):
    plan = gpu_check.main(['prepare', '--dry-run', '--skip', 'NumPy',
                           'py_yaml', 'pyyaml'])
    assert not any(s.startswith(('numpy', 'PyYAML')) for s in
                   plan['core'] + plan['heavy'])
    assert any(s.startswith('scipy') for s in plan['heavy'])


def test_prepare_never_overwrites_a_bundle_silently(tmp_path, capsys):
    (tmp_path / 'old.whl').write_bytes(b'x')
    with pytest.raises(SystemExit, match='is not empty; pass --overwrite'):
        gpu_check.main(['prepare', '--dest', str(tmp_path)])
    assert (tmp_path / 'old.whl').read_bytes() == b'x'


@pytest.mark.parametrize('argv, message', [
    (['run', '--budget-s', '30', '--out', 'x'], '--budget-s must be >= 60'),
    (['run', '--batch-size', '0', '--out', 'x'], '--batch-size must be >= 1'),
    (['prepare', '--budget-mib', '0'], '--budget-mib must be > 0'),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        gpu_check.parse_args(argv)
    assert message in capsys.readouterr().err


def test_run_needs_a_result_folder(monkeypatch, capsys):
    monkeypatch.delenv('OUT', raising=False)
    with pytest.raises(SystemExit):
        gpu_check.parse_args(['run'])
    assert 'run needs --out or $OUT' in capsys.readouterr().err


def test_inventory_finds_what_the_machine_lacks(tmp_path):
    for name in ('six-1.17.0-py2.py3-none-any.whl',
                 'python_dateutil-4.0.0-py3-none-any.whl',
                 'surely_not_installed_pkg-1.0-py3-none-any.whl'):
        (tmp_path / name).write_bytes(b'')
    info = gpu_check.inventory(str(tmp_path))
    assert set(info['present']) == {'six', 'python_dateutil'}
    assert [osp.basename(w) for w in info['missing_wheels']] == [
        'surely_not_installed_pkg-1.0-py3-none-any.whl']
    assert gpu_check._dist_name('mmcv-2.1.0.tar.gz') == 'mmcv'


def test_run_without_a_gpu_stops_after_the_inventory(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU: the real check runs there')
    out = tmp_path / 'out'
    proc = run_tool(['tools/gpu_check.sh', '--out', str(out), '--bundle',
                     str(tmp_path)], env=dict(PYTHON=sys.executable))
    summary = json.loads((out / 'summary.json').read_text())
    assert list(summary['phases']) == ['inventory', 'abort']
    assert summary['phases']['abort']['reason'] == 'torch sees no CUDA GPU'
    assert (out / 'inventory.json').is_file()
    assert 'inventory' in proc.stdout
