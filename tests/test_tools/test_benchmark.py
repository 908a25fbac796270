"""tools/analysis_tools/benchmark.py: the FLOP fix and the table."""
import os.path as osp
import sys

import torch
from mmengine.analysis import FlopAnalyzer

from mmpvg.testing import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark  # noqa: E402

from mmpvg.models import MPVGViT  # noqa: E402

ARCH = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


def test_sdpa_flops_are_counted():
    """mmengine skips scaled_dot_product_attention; the handle adds exactly
    QK^T and AV: L * N * N * 2D multiply-adds per image."""
    model = benchmark.Classifier(
        MPVGViT(arch=ARCH, img_size=32, patch_size=8, pe_mode='mpvg'), 32)
    x = torch.randn(1, 3, 32, 32)
    without = FlopAnalyzer(model.eval(), (x, ))
    without.unsupported_ops_warnings(False)
    without.uncalled_modules_warnings(False)
    N, D, L = 16, 32, 3
    assert benchmark.count_flops(model, 32, 'cpu') - without.total() == (
        L * N * N * 2 * D)
    # the rest is mmengine's own count: qkv, proj, fc1, fc2, the head, and
    # 5 flops per element for each of the two LayerNorms of a block
    linear = L * N * (D * 3 * D + D * D + 2 * D * 64) + D * 1000
    norms = L * 2 * 5 * N * D
    assert without.by_module()['backbone.blocks'] + without.by_module()[
        'head'] == linear + norms


def test_table_runs_interleaved_and_reports_every_model(capsys, tmp_path):
    out = tmp_path / 'speed.md'
    sys.argv = ['benchmark.py', '--archs', 'deit-tiny', '--modes', 'gap',
                'mpvg', '--batch-size', '1', '--img-size', '32',
                '--repeats', '1', '--warmup', '0', '--train',
                '--out', str(out)]
    benchmark.main()
    table = out.read_text()
    for name in ('mmpretrain ViT', 'MPVGViT gap', 'MPVGViT mpvg'):
        assert f'| deit-tiny | {name} |' in table
    assert '| 1.00x |' in table  # the reference row
    assert 'n/a' in table  # no per-model peak memory on the CPU
