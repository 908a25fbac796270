# Copyright (c) mmpvg contributors. All rights reserved.
"""Every backbone family refuses a bad size, rate, switch or arch with one
message that names the argument and what is accepted (issue 11: these used
to fail far from their cause, or to build a model that runs)."""
import pytest

from mmpvg.models import MPVGCeiT, MPVGSwin, MPVGViT, MPVGViTAdapter
from mmpvg.utils.checks import check_backbone_args

SMALL = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
SWIN = dict(embed_dims=16, depths=[1, 1], num_heads=[1, 2])


@pytest.mark.parametrize('kwargs, message', [
    (dict(patch_size=0), 'patch_size must be a positive int or a pair'),
    (dict(patch_size=2.5), 'patch_size must be a positive int or a pair'),
    (dict(img_size=(32, 0)), r'img_size must be a positive int .* got '
     r'\(32, 0\)'),
    (dict(in_channels=0), 'in_channels must be an int >= 1, got 0'),
    (dict(attn_drop_rate=1.0), r'attn_drop_rate must be a number in '
     r'\[0, 1\), got 1.0'),
    (dict(drop_rate=-0.1), r'drop_rate must be a number in \[0, 1\)'),
    (dict(drop_path_rate=2), r'drop_path_rate must be a number in \[0, 1\)'),
    (dict(interpolate_mode='cubic'), "interpolate_mode='cubic' is not "
     r"supported; choose from \['nearest'"),
    (dict(out_indices='1'), "out_indices must be an int or a non-empty "
     "list of ints, got '1'"),
    (dict(out_indices=[]), 'out_indices must be an int or a non-empty'),
    (dict(pe_at_input='False'), "pe_at_input must be True, False or None, "
     "got 'False'"),
    (dict(hierarchical_pe=0), 'hierarchical_pe must be True, False or None'),
    (dict(arch=dict(SMALL, embed_dims=0)),
     'arch embed_dims must be an int >= 1, got 0'),
    (dict(arch=dict(SMALL, num_layers=0)),
     'arch num_layers must be an int >= 1, got 0'),
    (dict(arch=dict(SMALL, feedforward_channels=0)),
     'arch feedforward_channels must be an int >= 1, got 0'),
])
def test_vit_refuses(kwargs, message):
    kwargs = dict(dict(arch=SMALL), **kwargs)
    with pytest.raises(ValueError, match=message):
        MPVGViT(**kwargs)


def test_custom_arch_sizes_are_checked_too():
    with pytest.raises(ValueError, match='patch_size must be a positive int'):
        MPVGViT(arch=dict(SMALL, patch_size=0))
    with pytest.raises(ValueError, match='img_size must be a positive int'):
        MPVGViT(arch=dict(SMALL, img_size=0))


@pytest.mark.parametrize('kwargs, message', [
    (dict(patch_size=0), 'patch_size must be a positive int or a pair'),
    (dict(img_size=0), 'img_size must be a positive int or a pair'),
    (dict(window_size=0), 'window_size must be an int >= 1, got 0'),
    (dict(drop_rate=1.0), r'drop_rate must be a number in \[0, 1\)'),
    (dict(drop_path_rate=-1), r'drop_path_rate must be a number in \[0, 1\)'),
    (dict(arch='tinyy'), r"arch='tinyy' is not a Swin preset; choose from "
     r"\['b', 'base'"),
    (dict(arch=dict(embed_dims=16, depths=[1])),
     r"A custom Swin arch is a dict with exactly the keys \['depths', "
     r"'embed_dims', 'num_heads'\]"),
    (dict(layerwise_pe='yes'), 'layerwise_pe must be True, False or None'),
])
def test_swin_refuses(kwargs, message):
    """These were a ZeroDivisionError, a TypeError on None and bare
    AssertionErrors from mmpretrain's Swin."""
    kwargs = dict(dict(arch=SWIN, img_size=32, window_size=2,
                       out_indices=(1, )), **kwargs)
    with pytest.raises(ValueError, match=message):
        MPVGSwin(**kwargs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(img_size=0), 'img_size must be a positive int or a pair'),
    (dict(drop_rate=1.0), r'drop_rate must be a number in \[0, 1\)'),
    (dict(arch=dict(SMALL, patch_size=0)),
     'patch_size must be a positive int or a pair'),
])
def test_ceit_refuses(kwargs, message):
    kwargs = dict(dict(arch=SMALL), **kwargs)
    with pytest.raises(ValueError, match=message):
        MPVGCeiT(**kwargs)


def test_adapter_refuses_through_its_vit():
    with pytest.raises(ValueError, match=r'drop_rate must be a number in '
                       r'\[0, 1\), got 1.0'):
        MPVGViTAdapter(arch=SMALL, drop_rate=1.0, window_size=0,
                       interaction_indexes=[[0, 1]])


def test_accepted_values_pass():
    check_backbone_args(img_size=(32, 48), patch_size=[4], in_channels=1,
                        drop_rate=0., attn_drop_rate=0.5,
                        drop_path_rate=0.99, interpolate_mode='bilinear',
                        out_indices=(0, -1), window_size=None)
    with pytest.raises(TypeError, match="does not know 'img_sise'"):
        check_backbone_args(img_sise=3)
