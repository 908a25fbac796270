"""Swin-Ti configs (configs/mpvg/swin-tiny-*, the Swin demo): one leaf per
mode, the paper's recipe, the weight-decay rule (relative position bias
tables included). Building and the naming convention of every leaf are
checked by test_classification.py and test_layout.py."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmpvg  # noqa: F401
from config_convention import (CONFIGS, build_model, by_suffix, check_decay,
                               decay_by_name, leaves)

# no 'cls': Swin has no class token
SWIN_MODES = ('gap', 'lape', 'pvg', 'mpvg')


def _load(rel):
    return Config.fromfile(osp.join(CONFIGS, rel))


def test_one_leaf_per_mode():
    swin = [p for p in leaves('mmpretrain') if 'swin-' in p]
    assert sorted(swin) == sorted(
        [f'mpvg/swin-tiny-{m}_16xb64_in1k.py' for m in SWIN_MODES] +
        ['demo/swin-demo-mpvg_1xb64_demo-digits.py'])


@pytest.mark.parametrize('mode', SWIN_MODES)
def test_leaf_builds_swin_tiny_of_its_mode(mode):
    backbone = build_model(
        _load(f'mpvg/swin-tiny-{mode}_16xb64_in1k.py')).backbone
    assert type(backbone).__name__ == 'MPVGSwin'
    assert backbone.pe_mode == mode
    assert backbone.depths == [2, 2, 6, 2] and backbone.embed_dims == 96
    assert backbone.pe.pos_embed.shape == (1, 56 * 56, 96)
    assert (backbone.pe.last_norm is not None) == (mode == 'mpvg')
    assert bool(backbone.pe.pe_at_input) == (mode != 'lape')


def test_in1k_recipe_matches_paper():
    cfg = _load('mpvg/swin-tiny-mpvg_16xb64_in1k.py')
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == 1e-3
    assert opt.weight_decay == 0.05
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=5.0)
    assert cfg.train_dataloader.batch_size * 16 == 1024
    assert cfg.train_cfg.max_epochs == 300
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 20
    assert cosine.type == 'CosineAnnealingLR' and cosine.begin == 20
    assert cfg.auto_scale_lr.base_batch_size == 1024
    assert cfg.model.backbone.drop_path_rate == 0.2
    assert cfg.model.neck.type == 'GlobalAveragePooling'
    assert cfg.model.head.loss.label_smooth_val == 0.1


@pytest.mark.parametrize('rel', ['mpvg/swin-tiny-mpvg_16xb64_in1k.py',
                                 'demo/swin-demo-mpvg_1xb64_demo-digits.py'])
def test_no_weight_decay_on_pe_norms_biases_relative_bias(rel):
    cfg = _load(rel)
    cfg.model.backbone.arch = dict(embed_dims=16, depths=[2, 2],
                                   num_heads=[2, 2])
    cfg.model.backbone.img_size = 64
    cfg.model.backbone.window_size = 4
    cfg.model.backbone.out_indices = (1, )
    cfg.model.head.in_channels = 32
    model = build_model(cfg)
    decay = decay_by_name(model, cfg.optim_wrapper)
    tables = [n for n in decay if n.endswith('relative_position_bias_table')]
    assert len(tables) == 4 and all(decay[n] == 0.0 for n in tables)
    # the project's rule on everything but the tables
    check_decay({n: v for n, v in decay.items() if n not in tables}, model,
                0.05)
    assert by_suffix(decay, 'pe.pos_embed') == 0.0
    assert by_suffix(decay, 'pe.norms.0.weight') == 0.0
    assert by_suffix(decay, 'pe.last_norm.weight') == 0.0
    assert by_suffix(decay, 'stages.0.blocks.0.attn.w_msa.qkv.weight') == 0.05
