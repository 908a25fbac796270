"""CeiT-Ti configs: ImageNet-1K leaves for every mode (the paper's CeiT
recipe, which is DeiT's) and the CPU demo; all follow the convention of
configs/README.md."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmpvg  # noqa: F401
from config_convention import (CONFIGS, build_model, built_pe_mode,
                               by_suffix, check_inheritance, decay_by_name,
                               leaves, mode_of_name)

MODES = ('cls', 'gap', 'lape', 'pvg', 'mpvg')
CEIT_LEAVES = [p for p in leaves('mmpretrain')
               if osp.basename(p).startswith('ceit-')]
IN1K = [f'mpvg/ceit-tiny-{m}_8xb128_in1k.py' for m in MODES]
DEMO = ['demo/ceit-demo-mpvg_1xb64_demo-digits.py']


def _load(rel):
    return Config.fromfile(osp.join(CONFIGS, rel))


def test_every_mode_has_its_config():
    assert sorted(CEIT_LEAVES) == sorted(IN1K + DEMO)


@pytest.mark.parametrize('rel', IN1K + DEMO)
def test_leaf_builds_and_follows_the_convention(rel):
    cfg = _load(rel)
    check_inheritance(rel)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.model.backbone.type == 'MPVGCeiT'
    backbone = build_model(cfg).backbone
    assert built_pe_mode(backbone) == mode_of_name(rel)
    if rel in DEMO:
        assert backbone.patch_resolution == (8, 8)
    else:
        assert backbone.embed_dims == 192 and backbone.num_layers == 12
        assert backbone.patch_resolution == (14, 14)
        assert backbone.lca_tokens == ('cls' if backbone.with_cls_token
                                       else 'gap')


def test_in1k_recipe_matches_paper():
    cfg = _load('mpvg/ceit-tiny-mpvg_8xb128_in1k.py')
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == 5e-4 * 1024 / 512
    assert opt.weight_decay == 0.05
    assert cfg.train_dataloader.batch_size * 8 == 1024
    assert cfg.train_dataloader.sampler.type == 'RepeatAugSampler'
    assert cfg.train_cfg.max_epochs == 300
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 5
    assert cosine.type == 'CosineAnnealingLR' and cosine.begin == 5
    assert cfg.auto_scale_lr.base_batch_size == 1024
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert [a.type for a in cfg.model.train_cfg.augments] == ['Mixup',
                                                              'CutMix']


@pytest.mark.parametrize('rel', ['mpvg/ceit-tiny-mpvg_8xb128_in1k.py',
                                 'mpvg/ceit-tiny-lape_8xb128_in1k.py'])
def test_no_weight_decay_on_embeddings_norms_biases(rel):
    cfg = _load(rel)
    cfg.model.backbone.arch = dict(
        embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64,
        stem_channels=8)
    cfg.model.head.in_channels = 32
    model = build_model(cfg)
    decay = decay_by_name(model, cfg.optim_wrapper)
    params = dict(model.named_parameters())
    for name, value in decay.items():
        no_decay = params[name].ndim <= 1 or name.endswith(
            ('pos_embed', 'cls_token', 'layer_embed'))
        assert value == (0.0 if no_decay else 0.05), (name, value)
    assert by_suffix(decay, 'lca.layer_embed') == 0.0
    assert by_suffix(decay, 'blocks.0.mlp.norm1.weight') == 0.0  # BN
    assert by_suffix(decay, 'blocks.0.mlp.conv1.weight') == 0.05
    assert by_suffix(decay, 'stem.conv.weight') == 0.05
