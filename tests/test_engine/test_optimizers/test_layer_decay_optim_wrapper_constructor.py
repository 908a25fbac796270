"""LayerDecayOptimWrapperConstructor on an mmseg segmentor with MPVGViT."""
import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmpvg  # noqa: F401

L = 4
ARCH = dict(embed_dims=32, num_layers=L, num_heads=2, feedforward_channels=64)


def segmentor(pe_mode='mpvg'):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS.build(dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=dict(type='MPVGViT', arch=ARCH, img_size=32, patch_size=8,
                      pe_mode=pe_mode, out_type='featmap', out_indices=-1),
        decode_head=dict(type='FCNHead', in_channels=32, channels=16,
                         num_convs=1, num_classes=5,
                         norm_cfg=dict(type='BN'))))


def optim_wrapper(model, rate=0.9):
    init_default_scope('mmseg')  # conftest restores the scope afterwards
    return build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(
            layer_decay_rate=rate, norm_decay_mult=0.0, bias_decay_mult=0.0,
            flat_decay_mult=0.0,
            custom_keys={'.pos_embed': dict(decay_mult=0.0)})))


def expected_depth(name):
    if not name.startswith('backbone.'):
        return L + 1
    name = name[len('backbone.'):]
    if name.startswith(('patch_embed.', 'pe.pos_embed', 'cls_token')):
        return 0
    if name.startswith('blocks.'):
        return int(name.split('.')[1]) + 1
    if name.startswith('pe.norms.'):
        return int(name.split('.')[2]) + 1
    return L + 1  # norm, pe.last_norm


@pytest.mark.parametrize('pe_mode', ['mpvg', 'lape'])
def test_groups_cover_every_parameter_once_with_its_rate(pe_mode):
    model = segmentor(pe_mode)
    groups = optim_wrapper(model).optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    seen = [names[id(p)] for g in groups for p in g['params']]
    assert sorted(seen) == sorted(names.values())  # all, none twice
    for g in groups:
        name = g['param_name']
        depth = expected_depth(name)
        assert g['layer_id'] == depth, name
        assert g['lr'] == pytest.approx(1e-3 * 0.9**(L + 1 - depth)), name
        no_decay = (g['params'][0].ndim == 1 or 'pos_embed' in name)
        assert g['weight_decay'] == (0.0 if no_decay else 0.05), name
    by_name = {g['param_name']: g for g in groups}
    assert by_name['backbone.pe.pos_embed']['lr'] == pytest.approx(
        1e-3 * 0.9**5)
    if pe_mode == 'mpvg':
        assert by_name['backbone.pe.norms.1.weight']['layer_id'] == 2
        assert by_name['backbone.pe.last_norm.weight']['lr'] == 1e-3
    else:
        assert by_name['backbone.pe.norms.0.weight']['layer_id'] == 1
    assert by_name['decode_head.conv_seg.weight']['lr'] == 1e-3


def test_backbone_without_layer_depth_is_a_clear_error():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(2, 2)

    with pytest.raises(TypeError, match='get_layer_depth'):
        optim_wrapper(Net())


# --------------------------------------------------------------------------
# The real ViT-Adapter-Ti UperNet configs (configs/upernet)
# --------------------------------------------------------------------------
ADAPTER_CFG = ('configs/upernet/'
               'upernet_vit-adapter-ti-{}_4xb2-160k_ade20k-512x512.py')


def adapter_expected_depth(name, backbone):
    """Depth of a parameter of a ViT-Adapter-Ti segmentor (12 blocks):
    stem 0, block i and its PE LayerNorm i + 1, everything else (the
    adapter's own layers, Last LN, Last-LN PE norm, heads) 13."""
    if not name.startswith('backbone.'):
        return 13
    short = name[len('backbone.'):]
    if short.startswith(backbone.ADAPTER_PREFIXES):
        return 13
    assert short.startswith('vit.'), short  # the adapter's ViT
    return expected_depth_of(short[len('vit.'):], 12)


def expected_depth_of(short, num_layers):
    if short.startswith(('patch_embed.', 'cls_token')) or short == \
            'pe.pos_embed':
        return 0
    if short.startswith('blocks.'):
        return int(short.split('.')[1]) + 1
    if short.startswith('pe.norms.'):
        return int(short.split('.')[2]) + 1
    return num_layers + 1


@pytest.mark.parametrize('pe_mode', ['mpvg', 'lape'])
def test_vit_adapter_ti_groups_from_the_real_config(pe_mode):
    import os.path as osp

    import torch
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from torch.nn.modules.batchnorm import _BatchNorm

    from mmpvg.testing import REPO_ROOT
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, ADAPTER_CFG.format(pe_mode)))
    cfg.model.backbone.init_cfg = None  # the ImageNet checkpoint is not here
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    backbone = model.backbone
    assert type(backbone).__name__ == 'MPVGViTAdapter'
    groups = build_optim_wrapper(model, cfg.optim_wrapper).optimizer \
        .param_groups
    base_lr, base_wd = 12e-5, 0.01
    names = {id(p): n for n, p in model.named_parameters()}
    seen = [names[id(p)] for g in groups for p in g['params']]
    assert len(seen) == len(set(seen)) == len(names)  # all, none twice
    assert all(len(g['params']) == 1 for g in groups)

    norm_params = {
        f'{m_name}.{p_name}'
        for m_name, m in model.named_modules()
        if isinstance(m, (nn.LayerNorm, _BatchNorm, nn.GroupNorm))
        for p_name, _ in m.named_parameters(recurse=False)
    }
    counts = {}
    for g in groups:
        name = g['param_name']
        depth = adapter_expected_depth(name, backbone)
        assert g['layer_id'] == depth, name
        assert g['lr'] == pytest.approx(base_lr * 0.95**(13 - depth)), name
        no_decay = (name in norm_params or name.endswith('.bias')
                    or g['params'][0].ndim == 1  # e.g. the injectors' gamma
                    or name.endswith(('pos_embed', 'level_embed')))
        assert g['weight_decay'] == (0.0 if no_decay else base_wd), name
        counts[depth] = counts.get(depth, 0) + 1

    # every adapter parameter is at the base rate, with the heads
    adapter = [n for n in names.values() if n.startswith('backbone.') and
               n[len('backbone.'):].startswith(backbone.ADAPTER_PREFIXES)]
    by_name = {g['param_name']: g for g in groups}
    assert len(adapter) > 200
    assert all(by_name[n]['lr'] == base_lr for n in adapter)
    assert by_name['backbone.level_embed']['weight_decay'] == 0.0
    assert by_name['backbone.vit.pe.pos_embed']['weight_decay'] == 0.0
    assert by_name['backbone.vit.pe.pos_embed']['lr'] == pytest.approx(
        base_lr * 0.95**13)

    # tensors per rate: stem (patch_embed weight/bias, pos_0); block 0
    # (12 tensors, plus its PE LayerNorm for LaPE, whose chain starts at
    # block 0); blocks 1-11 (12 + 2 PE LayerNorm tensors); base rate: Last
    # LN (+ Last-LN PE norm for MPVG), the adapter, decode and aux heads.
    n_adapter = len(adapter)
    n_heads = sum(not n.startswith('backbone.') for n in names.values())
    if pe_mode == 'mpvg':
        assert counts == {0: 3, 1: 12, **{d: 14 for d in range(2, 13)},
                          13: n_adapter + n_heads + 4}
    else:
        assert counts == {0: 3, **{d: 14 for d in range(1, 13)},
                          13: n_adapter + n_heads + 2}
    assert (n_adapter, n_heads) == (209, 43)
