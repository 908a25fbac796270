"""Segmentation configs (configs/upernet, the demo segmentor): every leaf
builds and follows the convention of configs/README.md; the paper's ADE20K
recipe; the weight-decay rule on the real models."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmpvg  # noqa: F401
from config_convention import (CONFIGS, build_model, built_pe_mode,
                               check_inheritance, check_pretrained, leaves,
                               mode_of_name)

LEAVES = leaves('mmseg')
MODES = ('cls', 'lape', 'pvg', 'mpvg')
PLAIN = 'upernet/upernet_deit-tiny-mpvg_mln_4xb2-160k_ade20k-512x512.py'
DEMO = 'demo/upernet_vit-demo-mpvg_mln_1xb8-600_demo-shapes-64x64.py'
# tools/run_demo.sh's segmentor
DEMO_MAIN = 'demo/upernet_vit-demo-mpvg_mln_1xb8-300_demo-shapes-64x64.py'
ADE20K = [p for p in LEAVES if p.startswith('upernet/')]


def _load(rel):
    return Config.fromfile(osp.join(CONFIGS, rel))


def _adapter(mode):
    return f'upernet/upernet_vit-adapter-ti-{mode}_4xb2-160k_ade20k-512x512.py'


def test_every_mode_has_an_adapter_config_and_a_plain_variant():
    assert LEAVES == sorted([_adapter(m) for m in MODES] +
                            [PLAIN, DEMO, DEMO_MAIN])


@pytest.mark.parametrize('rel', LEAVES)
def test_leaf_builds_with_the_mode_of_its_name(rel):
    cfg = _load(rel)
    assert cfg.default_scope == 'mmseg'
    assert 'mmpvg' in cfg.custom_imports.imports
    cfg.model.backbone.init_cfg = None  # the checkpoints are not here
    assert built_pe_mode(build_model(cfg).backbone) == mode_of_name(rel)


@pytest.mark.parametrize('rel', LEAVES)
def test_leaf_follows_the_convention(rel):
    check_inheritance(rel)
    check_pretrained(rel, _load(rel))


@pytest.mark.parametrize('mode', MODES)
def test_adapter_configs_differ_only_in_pe_mode_and_checkpoint(mode):
    cfg, ref = _load(_adapter(mode)), _load(_adapter('mpvg'))
    assert cfg.pretrained == \
        f'work_dirs/deit-tiny-{mode}_8xb128_in1k/epoch_300.pth'
    a, b = cfg.to_dict(), ref.to_dict()
    for d in (a, b):
        d.pop('pretrained')
        d['model']['backbone'].pop('pe_mode')
        d['model']['backbone']['init_cfg'].pop('checkpoint')
    assert a == b


@pytest.mark.parametrize('rel', ADE20K, ids=osp.basename)
def test_recipe(rel):
    cfg = _load(rel)
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW'
    assert (opt.optimizer.lr, opt.optimizer.weight_decay) == (12e-5, 0.01)
    assert opt.constructor == 'LayerDecayOptimWrapperConstructor'
    pw = opt.paramwise_cfg
    assert pw.layer_decay_rate == 0.95
    assert pw.norm_decay_mult == pw.bias_decay_mult == 0.0
    assert pw.flat_decay_mult == 0.0  # 1-D parameters: the adapter's gamma
    assert pw.custom_keys['.pos_embed'].decay_mult == 0.0
    assert pw.custom_keys['.level_embed'].decay_mult == 0.0
    warmup, poly = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and (warmup.begin, warmup.end) == (0,
                                                                        1500)
    assert poly.type == 'PolyLR' and (poly.begin, poly.end) == (1500, 160000)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size * 4 == 8  # 4xb2
    assert cfg.auto_scale_lr.base_batch_size == 8
    assert cfg.crop_size == (512, 512)
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512),
                                      stride=(341, 341))
    assert cfg.model.decode_head.type == 'UPerHead'
    assert cfg.model.auxiliary_head.type == 'FCNHead'
    assert cfg.model.decode_head.num_classes == 150
    assert cfg.model.auxiliary_head.num_classes == 150

    backbone = cfg.model.backbone
    assert backbone.img_size == 512 and backbone.arch == 'deit-tiny'
    if backbone.type == 'MPVGViTAdapter':
        assert backbone.window_size == 0 and backbone.global_attn_indexes == ()
        assert cfg.model.get('neck') is None
    else:
        assert backbone.type == 'MPVGViT'
        assert backbone.out_indices == (2, 5, 8, 11)
        assert cfg.model.neck.type == 'MultiLevelNeck'
        assert cfg.model.neck.in_channels == [192] * 4


def test_plain_vit_config_has_the_adapter_recipe():
    cfg, ref = _load(PLAIN), _load(_adapter('mpvg'))
    for key in ('optim_wrapper', 'param_scheduler', 'train_dataloader',
                'val_dataloader', 'train_cfg', 'auto_scale_lr'):
        assert cfg[key] == ref[key], key
    for key in ('data_preprocessor', 'test_cfg'):
        assert cfg.model[key] == ref.model[key], key
    for head in ('decode_head', 'auxiliary_head'):
        a, b = cfg.model[head].to_dict(), ref.model[head].to_dict()
        assert a == b, head


@pytest.mark.parametrize('rel', [DEMO, DEMO_MAIN])
def test_demo_recipe(rel):
    cfg = _load(rel)
    assert cfg.train_dataloader.dataset.type == 'DemoShapesADE20KDataset'
    assert 'mmpvg.datasets.demo_shapes_ade' in cfg.custom_imports.imports
    assert cfg.optim_wrapper.constructor == \
        'LayerDecayOptimWrapperConstructor'
    assert cfg.optim_wrapper.paramwise_cfg.flat_decay_mult == 0.0
    assert cfg.model.backbone.type == 'MPVGViT'
    assert cfg.model.neck.type == 'MultiLevelNeck'
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(64, 64),
                                      stride=(43, 43))
    warmup, poly = cfg.param_scheduler
    assert poly.type == 'PolyLR' and poly.end == cfg.train_cfg.max_iters
