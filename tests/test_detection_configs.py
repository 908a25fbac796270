"""The Mask R-CNN configs: recipe, per-mode differences, optimizer groups.

(tests/test_configs.py builds every config's model, these included.)
"""
import glob
import os.path as osp

import pytest
import torch.nn as nn
from mmengine.config import Config
from torch.nn.modules.batchnorm import _BatchNorm

import mmpvg  # noqa: F401
from conftest import ROOT

DET_DIR = osp.join(ROOT, 'configs/mask_rcnn')
MODES = ('cls', 'lape', 'pvg', 'mpvg')
SCHEDULES = {'ms-crop-3x': 36, '1x': 12}


def _load(name):
    return Config.fromfile(osp.join(DET_DIR, name))


def _adapter_cfg(mode, schedule):
    return f'mask-rcnn_{mode}-adapter-ti_fpn_8xb1-{schedule}_coco.py'


def test_all_detection_configs_present():
    names = sorted(osp.basename(p)
                   for p in glob.glob(osp.join(DET_DIR, '*.py')))
    expected = sorted([_adapter_cfg(m, s) for m in MODES for s in SCHEDULES]
                      + ['mask-rcnn_mpvg-vit-ti_sfp_8xb1-ms-crop-3x_coco.py'])
    assert names == expected


@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
@pytest.mark.parametrize('mode', MODES)
def test_adapter_configs_differ_only_in_pe_mode_and_checkpoint(mode,
                                                               schedule):
    cfg = _load(_adapter_cfg(mode, schedule))
    ref = _load(_adapter_cfg('mpvg', schedule))
    backbone = cfg.model.backbone
    assert backbone.type == 'MPVGViTAdapter' and backbone.pe_mode == mode
    assert backbone.init_cfg == dict(
        type='Pretrained', prefix='backbone.',
        checkpoint=f'work_dirs/deit-tiny_{mode}_8xb128_in1k/epoch_300.pth')
    # ... the classifier config the checkpoint comes from exists
    assert osp.isfile(osp.join(
        ROOT, f'configs/mpvg/deit-tiny_{mode}_8xb128_in1k.py'))
    a, b = cfg.to_dict(), ref.to_dict()
    for d in (a, b):
        d.pop('pe_mode'), d.pop('pretrained')
        d['model']['backbone'].pop('pe_mode')
        d['model']['backbone'].pop('init_cfg')
    assert a == b


@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
def test_recipe(schedule):
    cfg = _load(_adapter_cfg('mpvg', schedule))
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['mmpvg'],
                                      allow_failed_imports=False)
    bb = cfg.model.backbone
    assert bb.arch == 'deit-tiny' and bb.drop_path_rate == 0.1
    assert (bb.window_size, tuple(bb.global_attn_indexes)) == (14,
                                                                (2, 5, 8, 11))
    assert (bb.conv_inplane, bb.n_points, bb.deform_num_heads,
            bb.cffn_ratio) == (64, 4, 6, 0.25)
    assert bb.interaction_indexes == [[0, 2], [3, 5], [6, 8], [9, 11]]
    assert bb.spm_norm_cfg.type == bb.out_norm_cfg.type == 'SyncBN'
    assert cfg.model.neck.in_channels == [192] * 4
    assert cfg.model.neck.out_channels == 256
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 1e-4, 0.05)
    assert 'momentum' not in opt
    assert cfg.train_dataloader.batch_size * 8 == 8
    assert cfg.auto_scale_lr.base_batch_size == 8
    assert cfg.train_cfg.max_epochs == SCHEDULES[schedule]
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    if schedule == 'ms-crop-3x':
        assert 'RandomChoice' in types
        crop = [t for t in cfg.train_dataloader.dataset.pipeline
                if t['type'] == 'RandomCrop']
        assert crop[-1]['crop_size'] == (1024, 1024)
        assert cfg.param_scheduler[1].milestones == [27, 33]
    else:
        assert 'RandomChoice' not in types
        assert cfg.param_scheduler[1].milestones == [8, 11]


def test_plain_vit_config():
    cfg = _load('mask-rcnn_mpvg-vit-ti_sfp_8xb1-ms-crop-3x_coco.py')
    ref = _load(_adapter_cfg('mpvg', 'ms-crop-3x'))
    bb, neck = cfg.model.backbone, cfg.model.neck
    assert bb.type == 'MPVGViT' and bb.out_type == 'featmap'
    assert bb.pe_mode == 'mpvg' and bb.window_size == 14
    assert neck.type == 'SimpleFeaturePyramid'
    assert tuple(neck.scale_factors) == (4.0, 2.0, 1.0, 0.5)
    assert neck.num_outs == 5 and neck.out_channels == 256
    assert cfg.optim_wrapper == ref.optim_wrapper
    assert cfg.train_dataloader == ref.train_dataloader
    assert cfg.param_scheduler == ref.param_scheduler


def _decay_by_name(cfg, shrink=True):
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model_cfg = cfg.model
    if shrink:
        model_cfg.backbone.arch = dict(embed_dims=48, num_layers=4,
                                       num_heads=3, feedforward_channels=96)
        if model_cfg.backbone.type == 'MPVGViTAdapter':
            model_cfg.backbone.update(
                interaction_indexes=[[0, 0], [1, 1], [2, 2], [3, 3]],
                global_attn_indexes=(1, 3), deform_num_heads=3,
                conv_inplane=16)
            model_cfg.neck.in_channels = [48] * 4
        else:
            model_cfg.backbone.global_attn_indexes = (1, 3)
            model_cfg.neck.in_channels = 48
    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert len(decay) == len(names)
    norm_params = {
        f'{m_name}.{p_name}' if m_name else p_name
        for m_name, m in model.named_modules()
        if isinstance(m, (nn.LayerNorm, _BatchNorm, nn.GroupNorm))
        for p_name, _ in m.named_parameters(recurse=False)
    }
    return decay, norm_params


@pytest.mark.parametrize('name', [
    _adapter_cfg('mpvg', 'ms-crop-3x'), _adapter_cfg('lape', '1x'),
    'mask-rcnn_mpvg-vit-ti_sfp_8xb1-ms-crop-3x_coco.py',
    '../demo/mask-rcnn_mpvg-tiny_sfp_1xb8-8e_demo-shapes.py'])
def test_no_weight_decay_on_pe_norms_biases_level_embed(name):
    cfg = _load(name)
    wd = cfg.optim_wrapper.optimizer.weight_decay
    decay, norm_params = _decay_by_name(cfg, shrink='demo' not in name)
    for param, value in decay.items():
        no_decay = (param in norm_params or param.endswith('.bias')
                    or param.endswith('pos_embed')
                    or param.endswith('level_embed'))
        assert value == (0.0 if no_decay else wd), (param, value)
    assert decay['backbone.pe.pos_embed'] == 0.0
    assert decay['backbone.pe.norms.1.weight'] == 0.0  # a PE LayerNorm
    if 'mpvg' in name:
        assert decay['backbone.pe.last_norm.weight'] == 0.0  # Last-LN PE
    else:  # LaPE: a PE LayerNorm in every block, block 0 included
        assert decay['backbone.pe.norms.0.weight'] == 0.0
    assert decay['backbone.blocks.0.attn.qkv.weight'] == wd
    assert decay['roi_head.bbox_head.fc_cls.weight'] == wd
    if 'adapter' in name:
        assert decay['backbone.level_embed'] == 0.0
        assert decay['backbone.out_norms.0.weight'] == 0.0  # SyncBN
        assert decay['backbone.spm.stem.0.conv.weight'] == wd
    else:
        norms = [p for p in decay if p.startswith('neck.') and
                 p in norm_params]
        assert norms and all(decay[p] == 0.0 for p in norms)  # LN2d
