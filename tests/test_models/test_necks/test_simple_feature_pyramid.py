"""SimpleFeaturePyramid: shapes and strides, also on odd input sizes."""
import math

import pytest
import torch

import mmpvg  # noqa: F401
from mmpvg.models import MPVGViT, SimpleFeaturePyramid


def test_vitdet_levels_from_a_map():
    neck = SimpleFeaturePyramid(32, 16)  # (4.0, 2.0, 1.0, 0.5)
    x = torch.randn(2, 32, 7, 5)
    outs = neck((torch.randn(2, 8, 3, 3), x))  # the last map is used
    assert [tuple(o.shape) for o in outs] == [
        (2, 16, 28, 20), (2, 16, 14, 10), (2, 16, 7, 5), (2, 16, 4, 3)]
    # ViTDet's 4x path: deconv, norm, GELU, deconv (channels halved twice)
    assert [type(m).__name__ for m in neck.stages[0][:4]] == [
        'ConvTranspose2d', 'LayerNorm2d', 'GELU', 'ConvTranspose2d']
    assert neck.stages[0][3].out_channels == 8


@pytest.mark.parametrize('size', [(97, 131), (64, 64), (33, 250)])
def test_plain_vit_pyramid_strides_on_odd_sizes(size):
    h, w = size
    vit = MPVGViT(
        arch=dict(embed_dims=24, num_layers=2, num_heads=2,
                  feedforward_channels=48),
        patch_size=16, img_size=64, out_type='featmap', window_size=3,
        global_attn_indexes=(1, ))
    neck = SimpleFeaturePyramid(24, 8, num_outs=5, norm_cfg=dict(type='BN'))
    outs = neck(vit(torch.randn(1, 3, h, w)))
    gh, gw = math.ceil(h / 16), math.ceil(w / 16)  # token grid (padded)
    ph, pw = 16 * gh, 16 * gw  # the image padded to whole patches
    for out, stride in zip(outs, (4, 8, 16, 32, 64)):
        assert out.shape[:2] == (1, 8)
        # exact: ceil of the padded image over the stride ...
        assert out.shape[2:] == (math.ceil(ph / stride),
                                 math.ceil(pw / stride)), stride
        # ... which is ceil(size / stride) for every level at or above
        # the patch stride
        if stride >= 16:
            assert out.shape[2:] == (math.ceil(h / stride),
                                     math.ceil(w / stride)), stride


def test_downsampling_from_a_fine_map_and_gradients():
    # a patch-4 ViT: stride-4 map to strides 4, 8, 16, 32
    neck = SimpleFeaturePyramid(12, 6, scale_factors=(1, 0.5, 0.25, 0.125),
                                in_index=0, norm_cfg=None)
    x = torch.randn(2, 12, 25, 9, requires_grad=True)
    outs = neck([x, torch.randn(1)])
    assert [o.shape[2:] for o in outs] == [
        (25, 9), (13, 5), (7, 3), (4, 2)]
    sum(o.sum() for o in outs).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert neck.stages[0][0].bias is not None  # no norm: convs get a bias


def test_bad_arguments():
    with pytest.raises(ValueError, match='powers of two'):
        SimpleFeaturePyramid(8, 8, scale_factors=(3.0, ))
    with pytest.raises(ValueError, match='num_outs'):
        SimpleFeaturePyramid(8, 8, num_outs=2)
    with pytest.raises(ValueError, match='featmap'):
        SimpleFeaturePyramid(8, 8)(torch.randn(2, 8))


def test_registered_for_mmdet_and_mmseg():
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    for registry in (DET, SEG):
        neck = registry.build(dict(type='SimpleFeaturePyramid',
                                   in_channels=8, out_channels=4))
        assert isinstance(neck, SimpleFeaturePyramid)
