"""mmpvg.analysis.benchmark: interleaved timing, ratios with their noise,
peers of the same arch, FLOPs with attention, one subprocess per model for
peak memory. Nothing here depends on the speed of the machine."""
import pytest
import torch
from mmengine.analysis import FlopAnalyzer

from mmpvg.analysis import benchmark as bm
from mmpvg.models import MPVGViT
from mmpvg.testing import TOOL_TIMEOUT

ARCH = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


def test_not_imported_by_mmpvg():
    import subprocess
    import sys
    code = ('import sys, mmpvg; '
            'print("mmpvg.analysis.benchmark" in sys.modules, '
            '"timm" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=TOOL_TIMEOUT, check=True).stdout
    assert out.split() == ['False', 'False']


def test_sdpa_flops_are_counted():
    """mmengine skips scaled_dot_product_attention; the handle adds exactly
    QK^T and AV: L * N * N * 2D multiply-adds per image."""
    model = bm.Classifier(
        MPVGViT(arch=ARCH, img_size=32, patch_size=8, pe_mode='mpvg'), 32)
    x = torch.randn(1, 3, 32, 32)
    without = FlopAnalyzer(model.eval(), (x, ))
    without.unsupported_ops_warnings(False)
    without.uncalled_modules_warnings(False)
    N, D, L = 16, 32, 3
    assert bm.count_flops(model, 32) - without.total() == L * N * N * 2 * D
    # the rest is mmengine's own count: qkv, proj, fc1, fc2, the head, and
    # 5 flops per element for each of the two LayerNorms of a block
    linear = L * N * (D * 3 * D + D * D + 2 * D * 64) + D * 1000
    norms = L * 2 * 5 * N * D
    assert without.by_module()['backbone.blocks'] + without.by_module()[
        'head'] == linear + norms


def test_time_interleaved_runs_rounds_in_order():
    calls = []
    runners = {name: (lambda n=name: calls.append(n)) for name in 'abc'}
    times = bm.time_interleaved(runners, warmup=2, repeats=3)
    assert calls == list('abc') * 5  # 2 warm-up + 3 timed rounds
    assert {k: len(v) for k, v in times.items()} == dict(a=3, b=3, c=3)
    assert all(t >= 0 for v in times.values() for t in v)
    with pytest.raises(ValueError, match='repeats >= 1, got 0 and 0'):
        bm.time_interleaved(runners, warmup=0, repeats=0)


def test_ratio_is_of_medians_with_per_round_quartiles():
    r = bm.ratio([2., 2., 2., 2., 2.], [1., 1., 2., 4., 4.])
    assert r['median'] == 1.0  # median(ref) / median(times)
    # per-round ratios 0.5, 0.5, 1, 2, 2: quartiles (exclusive method)
    assert (r['low'], r['high']) == (0.5, 2.0)
    r = bm.ratio([3., 1.], [1., 1.])  # two rounds: min and max
    assert (r['median'], r['low'], r['high']) == (2.0, 1.0, 3.0)


def test_model_specs_pair_each_mode_with_peers_of_its_pooling():
    specs = bm.model_specs('vit', 'deit-tiny', ['cls', 'lape', 'mpvg'])
    assert [(s.name, s.group) for s in specs] == [
        ('timm ViT cls', 'cls'), ('mmpretrain ViT cls', 'cls'),
        ('timm ViT gap', 'gap'), ('mmpretrain ViT gap', 'gap'),
        ('MPVGViT cls', 'cls'), ('MPVGViT lape', 'cls'),
        ('MPVGViT mpvg', 'gap')]
    # only the peers some mode needs
    specs = bm.model_specs('vit', 'deit-tiny', ['pvg'], peers=['timm'])
    assert [s.name for s in specs] == ['timm ViT gap', 'MPVGViT pvg']
    specs = bm.model_specs('swin', 'tiny', ['gap', 'mpvg'])
    assert {s.group for s in specs} == {'gap'} and len(specs) == 4
    with pytest.raises(ValueError, match=r"Unknown peers \['tvm'\]; choose "
                       r"from \['timm', 'mmpretrain'\]"):
        bm.model_specs('vit', 'deit-tiny', ['gap'], peers=['tvm'])


def _params(spec):
    return sum(p.numel() for p in bm.build_classifier(spec).parameters())


def test_vit_peers_have_the_same_arch():
    """Same parameters (so same depth, width, heads, MLP, patch, head) and
    the same logits shape as MPVGViT of the same pooling."""
    def spec(impl, mode):
        return bm.ModelSpec('x', 'vit', impl, 'deit-tiny', mode,
                            'cls' if mode == 'cls' else 'gap', 32)
    for mode in ('cls', 'gap'):
        counts = {impl: _params(spec(impl, mode)) for impl in bm.IMPLS}
        assert len(set(counts.values())) == 1, (mode, counts)
    model = bm.build_classifier(spec('timm', 'gap')).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1000)
    with pytest.raises(ValueError, match='choose from'):
        bm.build_classifier(spec('timm', 'gap')._replace(arch='vit-lite-7'))


def test_swin_peers_have_the_same_arch():
    def spec(impl):
        return bm.ModelSpec('x', 'swin', impl, 'tiny', 'gap', 'gap', 224)
    ours, mmpre, timm = (_params(spec(i))
                         for i in ('mmpvg', 'mmpretrain', 'timm'))
    assert ours == mmpre  # 'gap' is mmpretrain's Swin with its abs PE
    assert mmpre - timm == 56 * 56 * 96  # timm's has no abs PE


def test_memory_is_measured_per_model_in_a_subprocess():
    """A training step holds AdamW's two moments and the gradients (3x the
    parameters) beyond its activations, and a bigger batch needs more."""
    spec = bm.ModelSpec('MPVGViT gap', 'vit', 'mmpvg', 'deit-tiny', 'gap',
                        'gap', 112)
    small = bm.measure_memory(spec, 2, threads=1, timeout=TOOL_TIMEOUT)
    big = bm.measure_memory(spec, 16, threads=1, timeout=TOOL_TIMEOUT)
    param_mib = _params(spec) * 4 / 2**20
    for m in (small, big):
        assert 0 < m['infer']['rss_mib'] < m['train']['rss_mib']
        assert m['train']['rss_mib'] > 3 * param_mib
        assert m['infer']['cuda_mib'] != m['infer']['cuda_mib']  # NaN
    assert big['train']['rss_mib'] > small['train']['rss_mib']
    assert big['infer']['rss_mib'] > small['infer']['rss_mib']


def test_memory_child_failure_is_reported():
    spec = bm.ModelSpec('bad', 'vit', 'timm', 'deit-huge', 'gap', 'gap', 32)
    with pytest.raises(RuntimeError, match=r"memory measurement of 'bad' "
                       r"failed[\s\S]*not benchmarked for vit"):
        bm.measure_memory(spec, 1, timeout=TOOL_TIMEOUT)


def test_amp_needs_a_gpu():
    with pytest.raises(ValueError, match="amp='bf16' is for a GPU"):
        bm.benchmark(bm.model_specs('vit', 'deit-tiny', ['gap']), amp='bf16',
                     device='cpu', memory=False)
