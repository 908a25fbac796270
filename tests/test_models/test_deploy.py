"""Deploy-time folding of MPVG's Last-LN PE and the per-grid PE cache."""
import copy

import pytest
import torch

import mmpvg  # noqa: F401
from mmpvg.models import fold_last_ln_pe

SMALL = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=48)


def classifier(**backbone):
    from mmpretrain.registry import MODELS
    backbone = dict(type='MPVGViT', arch=SMALL, img_size=32, patch_size=8,
                    **backbone)
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=backbone,
        head=dict(type='LinearClsHead', num_classes=7, in_channels=32)))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.ndim == 1 else 0.))
    return model.eval()


@pytest.mark.parametrize('last_ln_pe', [0, 2])
def test_fold_is_exact_and_loads_as_pvg(last_ln_pe):
    model = classifier(pe_mode='mpvg', last_ln_pe=last_ln_pe)
    img = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        before = model(img, mode='tensor')
        folded = copy.deepcopy(model)
        assert fold_last_ln_pe(folded) == (4, 4)
        after = folded(img, mode='tensor')
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert folded.backbone.pe.last_norm is None
    # The folded weights are a PVG-structured model.
    pvg = classifier(pe_mode='mpvg', last_ln_pe=False)
    pvg.load_state_dict(folded.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(pvg(img, mode='tensor'), before,
                                   rtol=1e-5, atol=1e-5)


def test_fold_for_another_input_size():
    model = classifier(pe_mode='mpvg')
    img = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        before = model(img, mode='tensor')
        assert fold_last_ln_pe(model, img_size=(48, 40)) == (6, 5)
        torch.testing.assert_close(model(img, mode='tensor'), before,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('backbone,match', [
    (dict(pe_mode='pvg'), 'Nothing to fold'),
    (dict(pe_mode='mpvg', out_type='featmap'), "out_type='avg_featmap'"),
])
def test_fold_refuses_what_it_cannot_fold(backbone, match):
    with pytest.raises(ValueError, match=match):
        fold_last_ln_pe(classifier(**backbone))


def test_inference_cache_computes_pes_once_per_grid(monkeypatch):
    model = classifier(pe_mode='mpvg')
    pe = model.backbone.pe
    calls = []
    real = pe._compute
    monkeypatch.setattr(pe, '_compute',
                        lambda hw, *args: calls.append(hw) or real(hw, *args))
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(img, mode='tensor')
        pe.enable_inference_cache()
        for _ in range(3):
            torch.testing.assert_close(model(img, mode='tensor'), ref)
        model(torch.randn(1, 3, 40, 40), mode='tensor')
        model(img, mode='tensor')  # both grids stay cached
    assert calls == [(4, 4), (4, 4), (5, 5)]
    # Training (or grad mode) never uses the cache; train() empties it.
    model.train()
    assert pe._cache == {}
    model(img, mode='tensor')
    assert len(calls) == 4


def test_fold_cli(tmp_path):
    from mmpvg.testing import run_tool
    cfg = tmp_path / 'cls.py'
    cfg.write_text(
        "default_scope = 'mmpretrain'\n"
        "custom_imports = dict(imports=['mmpvg'])\n"
        f"model = dict(type='ImageClassifier', backbone=dict(type='MPVGViT', "
        f"arch={SMALL!r}, img_size=32, patch_size=8, pe_mode='mpvg'), "
        "head=dict(type='LinearClsHead', num_classes=7, in_channels=32))\n")
    model = classifier(pe_mode='mpvg')
    src = tmp_path / 'mpvg.pth'
    torch.save({'state_dict': model.state_dict()}, src)
    out = tmp_path / 'deploy' / 'folded.pth'
    proc = run_tool(['tools/model_converters/fold_last_ln_pe.py', str(cfg),
                     str(src), str(out)])
    assert 'last_ln_pe=False' in proc.stdout
    folded = torch.load(out)
    assert folded['meta']['folded_last_ln_pe']['token_grid'] == [4, 4]
    pvg = classifier(pe_mode='mpvg', last_ln_pe=False)
    pvg.load_state_dict(folded['state_dict'])
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(pvg(img, mode='tensor'),
                                   model(img, mode='tensor'),
                                   rtol=1e-5, atol=1e-5)
    # an existing output is never overwritten without --force
    stamp = out.read_bytes()
    proc = run_tool(['tools/model_converters/fold_last_ln_pe.py', str(cfg),
                     str(src), str(out)], check=False)
    assert proc.returncode != 0 and 'pass --force' in proc.stderr
    assert out.read_bytes() == stamp
    # nor is the source checkpoint, even with --force
    stamp = src.read_bytes()
    proc = run_tool(['tools/model_converters/fold_last_ln_pe.py', str(cfg),
                     str(src), str(src), '--force'], check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().endswith(
        f"fold_last_ln_pe.py: error: Output {str(src)!r} is the source "
        'checkpoint; write the converted weights to another file.')
    assert src.read_bytes() == stamp
