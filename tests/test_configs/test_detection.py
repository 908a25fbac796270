"""Detection configs (configs/mask_rcnn, the demo detectors): every leaf
builds and follows the convention of configs/README.md; the paper's COCO
recipe; the weight-decay rule on the real models."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmpvg  # noqa: F401
from config_convention import (CONFIGS, build_model, built_pe_mode,
                               by_suffix, check_decay,
                               check_inheritance, check_pretrained,
                               decay_by_name, leaves, mode_of_name)

LEAVES = leaves('mmdet')
MODES = ('cls', 'lape', 'pvg', 'mpvg')
SCHEDULES = {'ms-crop-3x': 36, '1x': 12}
PLAIN = 'mask_rcnn/mask-rcnn_deit-tiny-mpvg_sfp_8xb1-ms-crop-3x_coco.py'
DEMO_ADAPTER = \
    'demo/mask-rcnn_vit-adapter-demo-mpvg_fpn_1xb4-8e_demo-shapes.py'
DEMO_SFP = 'demo/mask-rcnn_vit-demo-mpvg_sfp_1xb8-8e_demo-shapes.py'
# tools/run_demo.sh's detector
DEMO_MAIN = \
    'demo/mask-rcnn_vit-adapter-demo-mpvg_fpn_1xb2-3e_demo-shapes-96x96.py'


def _load(rel):
    return Config.fromfile(osp.join(CONFIGS, rel))


def _adapter(mode, schedule):
    return (f'mask_rcnn/mask-rcnn_vit-adapter-ti-{mode}_fpn_8xb1-'
            f'{schedule}_coco.py')


def test_all_detection_configs_present():
    expected = sorted([_adapter(m, s) for m in MODES for s in SCHEDULES] +
                      [PLAIN, DEMO_ADAPTER, DEMO_SFP, DEMO_MAIN])
    assert LEAVES == expected


@pytest.mark.parametrize('rel', LEAVES)
def test_leaf_builds_with_the_mode_of_its_name(rel):
    cfg = _load(rel)
    assert cfg.default_scope == 'mmdet'
    assert 'mmpvg' in cfg.custom_imports.imports
    cfg.model.backbone.init_cfg = None  # the checkpoints are not here
    assert built_pe_mode(build_model(cfg).backbone) == mode_of_name(rel)


@pytest.mark.parametrize('rel', LEAVES)
def test_leaf_follows_the_convention(rel):
    check_inheritance(rel)
    check_pretrained(rel, _load(rel))


@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
@pytest.mark.parametrize('mode', MODES)
def test_adapter_configs_differ_only_in_pe_mode_and_checkpoint(mode,
                                                               schedule):
    cfg = _load(_adapter(mode, schedule))
    ref = _load(_adapter('mpvg', schedule))
    assert cfg.model.backbone.type == 'MPVGViTAdapter'
    assert cfg.pretrained == \
        f'work_dirs/deit-tiny-{mode}_8xb128_in1k/epoch_300.pth'
    a, b = cfg.to_dict(), ref.to_dict()
    for d in (a, b):
        d.pop('pretrained')
        d['model']['backbone'].pop('pe_mode')
        d['model']['backbone']['init_cfg'].pop('checkpoint')
    assert a == b


@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
def test_recipe(schedule):
    cfg = _load(_adapter('mpvg', schedule))
    bb = cfg.model.backbone
    assert bb.arch == 'deit-tiny' and bb.drop_path_rate == 0.1
    assert bb.window_size == 14
    assert tuple(bb.global_attn_indexes) == (2, 5, 8, 11)
    assert (bb.conv_inplane, bb.n_points, bb.deform_num_heads,
            bb.cffn_ratio) == (64, 4, 6, 0.25)
    assert bb.interaction_indexes == [[0, 2], [3, 5], [6, 8], [9, 11]]
    assert bb.spm_norm_cfg.type == bb.out_norm_cfg.type == 'SyncBN'
    assert cfg.model.neck.type == 'FPN'
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


def test_plain_vit_config_has_the_adapter_recipe():
    cfg = _load(PLAIN)
    ref = _load(_adapter('mpvg', 'ms-crop-3x'))
    bb, neck = cfg.model.backbone, cfg.model.neck
    assert bb.type == 'MPVGViT' and bb.out_type == 'featmap'
    assert bb.window_size == 14
    assert neck.type == 'SimpleFeaturePyramid'
    assert tuple(neck.scale_factors) == (4.0, 2.0, 1.0, 0.5)
    assert neck.num_outs == 5 and neck.out_channels == 256
    for key in ('optim_wrapper', 'train_dataloader', 'val_dataloader',
                'param_scheduler', 'train_cfg', 'auto_scale_lr'):
        assert cfg[key] == ref[key], key
    a, b = cfg.model.to_dict(), ref.model.to_dict()
    for d in (a, b):
        d.pop('backbone'), d.pop('neck')
    assert a == b


def test_demo_detectors_share_heads_data_and_schedule():
    adapter, sfp = _load(DEMO_ADAPTER), _load(DEMO_SFP)
    assert adapter.model.backbone.type == 'MPVGViTAdapter'
    assert sfp.model.backbone.type == 'MPVGViT'
    assert sfp.model.neck.type == 'SimpleFeaturePyramid'
    for key in ('rpn_head', 'roi_head', 'train_cfg', 'test_cfg',
                'data_preprocessor'):
        assert adapter.model[key] == sfp.model[key], key
    # the adapter demo takes more, smaller steps at a higher lr (1xb4)
    assert (adapter.train_dataloader.batch_size,
            sfp.train_dataloader.batch_size) == (4, 8)
    assert (adapter.optim_wrapper.optimizer.lr,
            sfp.optim_wrapper.optimizer.lr) == (2e-3, 4e-4)
    assert adapter.train_dataloader.dataset.type == 'DemoShapesCocoDataset'
    assert 'mmpvg.datasets.demo_shapes_coco' in adapter.custom_imports.imports


def _shrink(model_cfg):
    model_cfg.backbone.init_cfg = None
    model_cfg.backbone.arch = dict(embed_dims=48, num_layers=4, num_heads=3,
                                   feedforward_channels=96)
    if model_cfg.backbone.type == 'MPVGViTAdapter':
        model_cfg.backbone.update(
            interaction_indexes=[[0, 0], [1, 1], [2, 2], [3, 3]],
            global_attn_indexes=(1, 3), deform_num_heads=3, conv_inplane=16)
        model_cfg.neck.in_channels = [48] * 4
    else:
        model_cfg.backbone.global_attn_indexes = (1, 3)
        model_cfg.neck.in_channels = 48


@pytest.mark.parametrize('rel', [
    _adapter('mpvg', 'ms-crop-3x'), _adapter('lape', '1x'), PLAIN,
    DEMO_ADAPTER
])
def test_weight_decay_rule(rel):
    cfg = _load(rel)
    _shrink(cfg.model)
    model = build_model(cfg)
    wd = cfg.optim_wrapper.optimizer.weight_decay
    decay = decay_by_name(model, cfg.optim_wrapper)
    check_decay(decay, model, wd)
    assert by_suffix(decay, 'pe.pos_embed') == 0.0
    assert by_suffix(decay, 'pe.norms.1.weight') == 0.0  # a PE LayerNorm
    if mode_of_name(rel) == 'mpvg':
        assert by_suffix(decay, 'pe.last_norm.weight') == 0.0  # Last-LN PE
    else:  # LaPE: a PE LayerNorm in every block, block 0 included
        assert by_suffix(decay, 'pe.norms.0.weight') == 0.0
    assert by_suffix(decay, 'blocks.0.attn.qkv.weight') == wd
    assert decay['roi_head.bbox_head.fc_cls.weight'] == wd
    if 'adapter' in rel:
        assert decay['backbone.level_embed'] == 0.0
        assert decay['backbone.out_norms.0.weight'] == 0.0  # SyncBN / BN
        assert decay['backbone.spm.stem.0.conv.weight'] == wd
        gammas = [n for n in decay if n.endswith('.gamma')]
        assert gammas and all(decay[n] == 0.0 for n in gammas)  # injectors


def test_main_demo_detector_is_the_adapter_demo_at_96x96():
    cfg, ref = _load(DEMO_MAIN), _load(DEMO_ADAPTER)
    assert cfg.model.backbone.img_size == 96  # pos_0 at the input's grid
    for split in ('train', 'val', 'test'):
        resize = [t for t in cfg[f'{split}_dataloader'].dataset.pipeline
                  if t['type'] == 'Resize']
        assert [t['scale'] for t in resize] == [(96, 96)], split
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 2
    assert cfg.train_cfg.max_epochs == 3
    assert cfg.param_scheduler[1].end == 3
    assert cfg.default_hooks.checkpoint.interval == 3
    # the same detector otherwise
    a, b = cfg.model.to_dict(), ref.model.to_dict()
    for d in (a, b):
        d['backbone'].pop('img_size')
        d['backbone']['init_cfg'].pop('checkpoint')
    assert a == b
