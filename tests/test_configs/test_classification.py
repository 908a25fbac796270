"""Classification configs (configs/mpvg, the demo classifiers): every leaf
builds and follows the convention of configs/README.md; the paper's
ImageNet-1K and CIFAR-100 recipes and ablations."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmpvg  # noqa: F401
from config_convention import (CONFIGS, backbone_field, build_model,
                               built_pe_mode,
                               by_suffix, check_decay,
                               check_inheritance, decay_by_name, leaves,
                               mode_of_name)

LEAVES = leaves('mmpretrain')
MODES = ('cls', 'gap', 'lape', 'pvg', 'mpvg')


def _load(rel):
    return Config.fromfile(osp.join(CONFIGS, rel))


def test_every_arch_and_mode_has_a_config():
    names = {osp.basename(p) for p in LEAVES}
    for mode in MODES:
        for arch in ('deit-tiny', 'deit-small', 'deit-base'):
            assert f'{arch}-{mode}_8xb128_in1k.py' in names
        assert f'vit-lite-7-4-{mode}_1xb128_cifar100.py' in names
        assert f'vit-demo-{mode}_1xb64_demo-digits.py' in names
    # the ViT family's leaves; the other families test theirs
    vit = [p for p in LEAVES
           if backbone_field(p).startswith(('deit-', 'vit-'))]
    # + the 12-epoch mpvg classifier that tools/run_demo.sh pretrains
    assert len(vit) == 3 * 5 + 5 + 5 + 7 + 1
    assert 'vit-demo-mpvg_1xb64-12e_demo-digits.py' in names


@pytest.mark.parametrize('rel', LEAVES)
def test_leaf_builds_with_the_mode_of_its_name(rel):
    cfg = _load(rel)
    assert cfg.default_scope == 'mmpretrain'
    assert 'mmpvg' in cfg.custom_imports.imports
    backbone = build_model(cfg).backbone
    assert built_pe_mode(backbone) == mode_of_name(rel)
    widths = {'deit-tiny': 192, 'deit-small': 384, 'deit-base': 768}
    for arch, width in widths.items():
        if osp.basename(rel).startswith(arch + '-'):
            assert backbone.embed_dims == width


@pytest.mark.parametrize('rel', LEAVES)
def test_leaf_follows_the_convention(rel):
    check_inheritance(rel)


def test_in1k_recipe_matches_paper():
    cfg = _load('mpvg/deit-tiny-mpvg_8xb128_in1k.py')
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


def test_cifar_recipe_matches_paper():
    cfg = _load('mpvg/vit-lite-7-4-mpvg_1xb128_cifar100.py')
    opt = cfg.optim_wrapper.optimizer
    assert (opt.lr, opt.weight_decay) == (6e-4, 0.06)
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.train_cfg.max_epochs == 310
    assert cfg.param_scheduler[0].end == 10


@pytest.mark.parametrize('rel', ['mpvg/deit-tiny-mpvg_8xb128_in1k.py',
                                 'mpvg/deit-tiny-lape_8xb128_in1k.py'])
def test_no_weight_decay_on_pe_class_token_norms_biases(rel):
    cfg = _load(rel)
    cfg.model.backbone.arch = dict(
        embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
    cfg.model.head.in_channels = 32
    model = build_model(cfg)
    decay = decay_by_name(model, cfg.optim_wrapper)
    check_decay(decay, model, 0.05)
    assert by_suffix(decay, 'pe.pos_embed') == 0.0
    assert by_suffix(decay, 'pe.norms.1.weight') == 0.0
    assert by_suffix(decay, 'blocks.0.attn.qkv.weight') == 0.05
    if mode_of_name(rel) == 'mpvg':
        assert by_suffix(decay, 'pe.last_norm.weight') == 0.0
    else:
        assert by_suffix(decay, 'cls_token') == 0.0


ABLATIONS = {
    'mpvg-pe-first-block': lambda pe: '0' in pe.norms and pe.last_ln_pe == 0,
    'mpvg-non-hierarchical': lambda pe: not pe.hierarchical,
    'mpvg-no-input-pe': lambda pe: not pe.pe_at_input and pe.layerwise,
    'mpvg-last-ln-pos5': lambda pe: pe.last_ln_pe == 5,
    'mpvg-last-ln-pos8': lambda pe: pe.last_ln_pe == 8,
    'mpvg-last-ln-pos11': lambda pe: pe.last_ln_pe == 11,
    'gap-last-ln-pe': lambda pe: not pe.layerwise and pe.last_ln_pe == 0,
}


@pytest.mark.parametrize('name', sorted(ABLATIONS))
def test_ablation_configs_set_their_switch(name):
    from mmpretrain.registry import MODELS
    rel = f'mpvg/ablations/deit-tiny-{name}_8xb128_in1k.py'
    assert rel in LEAVES
    backbone = MODELS.build(_load(rel).model.backbone)
    assert ABLATIONS[name](backbone.pe)
    assert len([p for p in LEAVES if 'ablations' in p]) == len(ABLATIONS)
