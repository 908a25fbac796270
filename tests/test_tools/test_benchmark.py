"""tools/analysis_tools/benchmark.py: both families, a row per model with its
ratios to each peer, per-model peak memory from subprocesses. No assertion
on speed: only that the tool runs and its table has the rows."""
import os.path as osp
import sys

import pytest

from mmpvg.testing import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark  # noqa: E402


def _rows(table):
    """{model: cells} of the markdown table."""
    lines = [line for line in table.splitlines() if line.startswith('| ')]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip('|').split('|')]
        rows[cells[1]] = dict(zip(header, cells))
    return rows


def test_vit_every_mode_against_both_peers(tmp_path):
    out = tmp_path / 'speed.md'
    benchmark.main(['--family', 'vit', '--batch-size', '2', '--img-size',
                    '32', '--repeats', '1', '--warmup', '0', '--no-memory',
                    '--out', str(out)])
    rows = _rows(out.read_text())
    assert list(rows) == [
        'timm ViT cls', 'mmpretrain ViT cls', 'timm ViT gap',
        'mmpretrain ViT gap', 'MPVGViT cls', 'MPVGViT gap', 'MPVGViT lape',
        'MPVGViT pvg', 'MPVGViT mpvg']
    for name, row in rows.items():
        assert float(row['infer img/s']) > 0 and float(row['train img/s']) > 0
        for col in ('infer vs timm', 'infer vs mmpretrain', 'train vs timm',
                    'train vs mmpretrain'):
            assert row[col].endswith(')') and 'x (' in row[col], (name, col)
        assert row['peak RSS infer (MiB)'] == 'n/a'  # --no-memory
    # each peer against itself is exactly 1
    assert rows['timm ViT gap']['infer vs timm'] == '1.00x (1.00-1.00)'
    assert rows['mmpretrain ViT cls']['train vs mmpretrain'] == (
        '1.00x (1.00-1.00)')
    assert rows['MPVGViT cls']['params (M)'] == rows['timm ViT cls'][
        'params (M)']


def test_vit_peak_memory_per_model(capsys):
    benchmark.main(['--modes', 'gap', '--peers', 'timm', '--batch-size', '2',
                    '--img-size', '64', '--repeats', '1', '--warmup', '0',
                    '--no-flops', '--threads', '1'])
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == ['timm ViT gap', 'MPVGViT gap']
    for row in rows.values():
        assert row['GFLOPs'] == 'n/a'
        assert 0 < float(row['peak RSS infer (MiB)']) < float(
            row['peak RSS train step (MiB)'])
        assert 'infer vs mmpretrain' not in row


def test_swin_family(capsys):
    # 224: mmpretrain's Swin refuses maps smaller than its 7x7 window
    benchmark.main(['--family', 'swin', '--batch-size', '1', '--repeats',
                    '1', '--warmup', '0', '--no-memory', '--no-train',
                    '--no-flops'])
    out = capsys.readouterr().out
    rows = _rows(out)
    assert list(rows) == [
        'timm Swin (rel. bias only)', 'mmpretrain Swin (abs PE)',
        'MPVGSwin gap', 'MPVGSwin lape', 'MPVGSwin pvg', 'MPVGSwin mpvg']
    assert 'train img/s' not in rows['MPVGSwin gap']
    params = [float(r['params (M)']) for r in rows.values()]
    assert params[1] == params[2]  # gap is mmpretrain's Swin with abs PE
    assert params[5] >= params[4] > params[2]  # PE LayerNorms, LN'_last
    assert 'batch 1, 224x224' in out


@pytest.mark.parametrize('argv, message', [
    (['--family', 'swin', '--modes', 'cls'],
     "--modes ['cls'] are not swin modes; choose from ['gap', 'lape', "
     "'pvg', 'mpvg']"),
    (['--archs', 'tiny'], "--archs ['tiny'] are not vit archs"),
    (['--amp', 'bf16', '--device', 'cpu'], '--amp bf16 needs a GPU'),
    (['--repeats', '0'], '--repeats and --batch-size must be >= 1'),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    assert message in capsys.readouterr().err
