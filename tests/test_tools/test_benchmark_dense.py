"""tools/analysis_tools/benchmark_dense.py: dense models timed from configs."""
import os.path as osp
import sys

import pytest

from mmpvg.testing import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_dense  # noqa: E402

DET_CFG = osp.join(
    REPO_ROOT, 'configs/demo/mask-rcnn_vit-adapter-demo-mpvg_fpn_1xb4-8e_demo-shapes.py')
SFP_CFG = osp.join(REPO_ROOT,
                   'configs/demo/mask-rcnn_vit-demo-mpvg_sfp_1xb8-8e_demo-shapes.py')
SEG_CFG = osp.join(
    REPO_ROOT, 'configs/demo/upernet_vit-demo-mpvg_mln_1xb8-600_demo-shapes-64x64.py')


def test_table_has_every_config_and_real_times(capsys):
    benchmark_dense.main([DET_CFG, SFP_CFG, '--img-size', '64', '96',
                          '--warmup', '0', '--repeats', '1'])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith('| mask')]
    assert len(lines) == 2, out
    for line, cfg in zip(lines, (DET_CFG, SFP_CFG)):
        name, params, seconds = [c.strip() for c in line.strip('|').split('|')]
        assert name == osp.basename(cfg)
        assert float(params) > 0 and float(seconds) > 0
    assert 'feat forward, 64x96' in out


@pytest.mark.parametrize('part', benchmark_dense.PARTS)
def test_every_part_runs_for_detector_and_segmentor(part):
    rows = benchmark_dense.benchmark([DET_CFG, SEG_CFG], (64, 64), part,
                                     warmup=0, repeats=1)
    assert [r['config'] for r in rows] == [DET_CFG, SEG_CFG]
    assert all(r['seconds'] > 0 and r['params'] > 0 for r in rows)


def test_full_part_returns_predictions():
    model, scope = benchmark_dense.build_model(DET_CFG)
    out = benchmark_dense.make_runner(model, scope, 'full', (64, 80))()
    assert len(out) == 1 and hasattr(out[0], 'pred_instances')


def test_bad_arguments(capsys, tmp_path):
    with pytest.raises(SystemExit):
        benchmark_dense.parse_args([DET_CFG, '--img-size', '16'])
    assert '--img-size takes H or H W, each >= 32' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark_dense.parse_args([DET_CFG, '--repeats', '0'])
    assert '--repeats >= 1' in capsys.readouterr().err
    cls_cfg = osp.join(REPO_ROOT, 'configs/demo/vit-demo-mpvg_1xb64_demo-digits.py')
    with pytest.raises(ValueError, match="default_scope must be one of"):
        benchmark_dense.build_model(cls_cfg)
