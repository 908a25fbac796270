"""Every shipped config loads and its model builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import mmpvg  # noqa: F401
from conftest import ROOT

CONFIGS = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


def test_configs_found():
    assert len(CONFIGS) >= 21


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    assert cfg.default_scope in ('mmpretrain', 'mmdet', 'mmseg')
    if cfg.default_scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
    elif cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    backbone = model.backbone
    name = osp.basename(path)
    for mode in ('cls', 'gap', 'lape', 'pvg', 'mpvg'):
        if f'_{mode}_' in name or name.startswith(f'{mode}-'):
            assert backbone.pe_mode == mode
    if 'deit-small' in name:
        assert backbone.embed_dims == 384
    if 'deit-base' in name:
        assert backbone.embed_dims == 768


def test_in1k_recipe_matches_paper():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/mpvg/deit-tiny_mpvg_8xb128_in1k.py'))
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == 5e-4 * 1024 / 512
    assert opt.weight_decay == 0.05
    assert cfg.train_dataloader.batch_size * 8 == 1024
    assert cfg.train_cfg.max_epochs == 300
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 5
    assert cosine.type == 'CosineAnnealingLR' and cosine.begin == 5
    assert cfg.auto_scale_lr.base_batch_size == 1024


def test_cifar_recipe_matches_paper():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/mpvg/vit-lite-7-4_mpvg_1xb128_cifar100.py'))
    opt = cfg.optim_wrapper.optimizer
    assert (opt.lr, opt.weight_decay) == (6e-4, 0.06)
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.train_cfg.max_epochs == 310
    assert cfg.param_scheduler[0].end == 10


def test_no_weight_decay_on_pe_norms_and_biases():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/mpvg/deit-tiny_mpvg_8xb128_in1k.py'))
    cfg.model.backbone.arch = dict(
        embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
    cfg.model.head.in_channels = 32
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert len(decay) == len(names)
    for name, wd in decay.items():
        no_decay = ('pos_embed' in name or 'norm' in name
                    or name.endswith('.bias'))
        assert wd == (0.0 if no_decay else 0.05), name
    assert decay['backbone.pe.norms.1.weight'] == 0.0
    assert decay['backbone.pe.last_norm.weight'] == 0.0
    assert decay['backbone.blocks.0.attn.qkv.weight'] == 0.05


ABLATIONS = {
    'pe-first-block': lambda pe: '0' in pe.norms and pe.last_ln_pe == 0,
    'non-hierarchical': lambda pe: not pe.hierarchical,
    'no-input-pe': lambda pe: not pe.pe_at_input and pe.layerwise,
    'last-ln-pos5': lambda pe: pe.last_ln_pe == 5,
    'last-ln-pos8': lambda pe: pe.last_ln_pe == 8,
    'last-ln-pos11': lambda pe: pe.last_ln_pe == 11,
    'gap-last-ln-pe': lambda pe: not pe.layerwise and pe.last_ln_pe == 0,
}


@pytest.mark.parametrize('name', sorted(ABLATIONS))
def test_ablation_configs_set_their_switch(name):
    from mmpretrain.registry import MODELS
    path, = glob.glob(osp.join(ROOT, 'configs/mpvg/ablations',
                               f'deit-tiny_*{name}_*.py'))
    cfg = Config.fromfile(path)
    backbone = MODELS.build(cfg.model.backbone)
    assert ABLATIONS[name](backbone.pe)
