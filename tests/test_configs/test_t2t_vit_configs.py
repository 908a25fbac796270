"""T2T-ViT-7 configs: ImageNet-1K leaves for every mode (the paper's T2T
recipe), CIFAR-100 fine-tuning leaves from the ImageNet checkpoint of the
same mode (T2T-ViT's transfer recipe) and the CPU demo; all follow the
convention of configs/README.md."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmpvg  # noqa: F401
from config_convention import (CONFIGS, build_model, built_pe_mode,
                               check_decay, check_inheritance,
                               check_pretrained, leaves,
                               mode_of_name)

MODES = ('cls', 'gap', 'lape', 'pvg', 'mpvg')
T2T_LEAVES = [p for p in leaves('mmpretrain')
              if osp.basename(p).startswith('t2t-vit-')]
IN1K = [f'mpvg/t2t-vit-7-{m}_8xb64_in1k.py' for m in MODES]
FT = [f'mpvg/t2t-vit-7-{m}_1xb128_cifar100-ft.py' for m in MODES]
DEMO = ['demo/t2t-vit-demo-mpvg_1xb64_demo-digits.py']
TINY = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64,
            qkv_bias=False, stem='t2t', pos_embed_type='sinusoidal',
            norm_eps=1e-5, t2t_cfg=dict(token_dims=8))


def _load(rel):
    return Config.fromfile(osp.join(CONFIGS, rel))


def test_every_mode_has_its_configs():
    assert sorted(T2T_LEAVES) == sorted(IN1K + FT + DEMO)


@pytest.mark.parametrize('rel', IN1K + FT + DEMO)
def test_leaf_builds_and_follows_the_convention(rel):
    cfg = _load(rel)
    check_inheritance(rel)
    assert cfg.default_scope == 'mmpretrain'
    if rel in FT:
        check_pretrained(rel, cfg)
        cfg.model.backbone.init_cfg = None  # no ImageNet checkpoint here
    backbone = build_model(cfg).backbone
    assert built_pe_mode(backbone) == mode_of_name(rel)
    assert backbone.pe.pos_embed_type == 'sinusoidal'
    assert backbone.blocks[0].norm1.eps == 1e-5
    if rel in DEMO:
        assert backbone.patch_resolution == (8, 8)
    else:
        assert backbone.embed_dims == 256 and backbone.num_layers == 7
        assert backbone.patch_resolution == (14, 14)


def test_in1k_recipe_matches_paper():
    cfg = _load('mpvg/t2t-vit-7-mpvg_8xb64_in1k.py')
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == 1e-3
    assert opt.weight_decay == 0.03
    assert cfg.train_dataloader.batch_size * 8 == 512
    assert cfg.auto_scale_lr.base_batch_size == 512
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 10
    assert (cosine.type, cosine.begin, cosine.end) == (
        'CosineAnnealingLR', 10, 300)
    assert cfg.train_cfg.max_epochs == 310  # 10 cool-down epochs at eta_min
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert [a.type for a in cfg.model.train_cfg.augments] == ['Mixup',
                                                              'CutMix']
    assert cfg.custom_hooks[0].type == 'EMAHook'
    # T2T-ViT's augmentation (mmpretrain's T2T-ViT ImageNet pipeline)
    types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert 'RandAugment' in types and 'RandomErasing' in types


def test_cifar_finetune_recipe_matches_the_transfer_script():
    cfg = _load('mpvg/t2t-vit-7-mpvg_1xb128_cifar100-ft.py')
    assert cfg.pretrained == (
        'work_dirs/t2t-vit-7-mpvg_8xb64_in1k/epoch_310.pth')
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'SGD' and opt.momentum == 0.9
    assert opt.weight_decay == 5e-4
    sched, = cfg.param_scheduler
    assert (sched.type, sched.T_max, sched.eta_min) == (
        'CosineAnnealingLR', 60, 2e-4)
    assert cfg.train_cfg.max_epochs == 60
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.model.head.num_classes == 100
    assert cfg.model.head.loss.label_smooth_val == 0.0  # cross-entropy
    assert cfg.model.train_cfg is None  # no mixup / cutmix
    assert cfg.model.backbone.drop_path_rate == 0.1
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert (crop.type, crop.crop_size, crop.padding) == ('RandomCrop', 224,
                                                         28)
    assert cfg.train_dataloader.dataset.pipeline[0].scale == 224
    assert cfg.val_dataloader.dataset.pipeline[0].scale == 224


def _groups(rel):
    """{parameter name: (lr, weight decay)} of a tiny model of ``rel``."""
    from mmengine.optim import build_optim_wrapper
    cfg = _load(rel)
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.arch = TINY
    cfg.model.head.in_channels = 32
    model = build_model(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    found = {names[id(p)]: (g['lr'], g['weight_decay'])
             for g in wrapper.optimizer.param_groups for p in g['params']
             if p.requires_grad}
    # every trainable parameter; pos_0 and the Performer's random features
    # are fixed
    fixed = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert fixed == {'backbone.pe.pos_embed',
                     'backbone.patch_embed.attention1.w',
                     'backbone.patch_embed.attention2.w'}
    assert set(found) == set(names.values()) - fixed
    return model, cfg, found


@pytest.mark.parametrize('mode', ['mpvg', 'lape'])
def test_finetune_learning_rates(mode):
    """Head 0.05, T2T module, blocks and PE LayerNorms 0.01 x 0.05; final
    norm, class token and LN'_last not optimised (lr 0)."""
    model, _, groups = _groups(
        f'mpvg/t2t-vit-7-{mode}_1xb128_cifar100-ft.py')
    head, backbone = 0.05, 0.05 * 0.01
    frozen = {'backbone.norm.weight', 'backbone.norm.bias',
              'backbone.cls_token', 'backbone.pe.last_norm.weight',
              'backbone.pe.last_norm.bias'}
    for name, (lr, _) in groups.items():
        if name.startswith('head.'):
            expected = head
        elif name in frozen:
            expected = 0.0
        else:
            expected = backbone
        assert lr == pytest.approx(expected), (name, lr)
    assert ('backbone.pe.norms.1.weight' in groups) and (
        groups['backbone.pe.norms.1.weight'][0] == pytest.approx(backbone))
    # the weight-decay rule of configs/README.md holds for every group
    check_decay({n: wd for n, (_, wd) in groups.items()}, model, 5e-4)


def test_in1k_weight_decay_rule():
    model, _, groups = _groups('mpvg/t2t-vit-7-pvg_8xb64_in1k.py')
    assert {lr for lr, _ in groups.values()} == {1e-3}
    check_decay({n: wd for n, (_, wd) in groups.items()}, model, 0.03)


def test_finetune_pipelines_give_224_crops():
    import numpy as np
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import TRANSFORMS
    init_default_scope('mmpretrain')
    cfg = _load(FT[0])
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        pipeline = Compose(
            [TRANSFORMS.build(t) for t in loader.dataset.pipeline])
        img = np.random.randint(0, 255, (32, 32, 3), np.uint8)
        out = pipeline(dict(img=img, gt_label=3))
        assert out['inputs'].shape == (3, 224, 224)


def test_finetune_starts_from_the_imagenet_backbone(tmp_path):
    """The fine-tuning leaf loads the backbone of the ImageNet checkpoint of
    its mode (prefix 'backbone.') and starts a new 100-class head."""
    import torch
    src_cfg = _load('mpvg/t2t-vit-7-pvg_8xb64_in1k.py')
    src_cfg.model.backbone.arch = TINY
    src_cfg.model.head.in_channels = 32
    torch.manual_seed(0)
    src = build_model(src_cfg)
    with torch.no_grad():
        for p in src.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    path = str(tmp_path / 'epoch_310.pth')
    torch.save({'state_dict': src.state_dict(), 'meta': {}}, path)

    cfg = _load('mpvg/t2t-vit-7-pvg_1xb128_cifar100-ft.py')
    cfg.model.backbone.arch = TINY
    cfg.model.backbone.init_cfg.checkpoint = path
    cfg.model.head.in_channels = 32
    model = build_model(cfg)
    model.init_weights()
    for name, value in src.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[name], value)
    assert model.head.fc.weight.shape == (100, 32)
