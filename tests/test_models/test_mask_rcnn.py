"""Mask R-CNN with MPVG backbones on CPU: loss, backward and predict.

Two detectors, both built from the CPU demo config with a smaller ViT: the
plain ViT + SimpleFeaturePyramid of the demo, and a ViT-Adapter + FPN. Data
are two demo images through the config's real pipelines.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmpvg  # noqa: F401
from mmpvg.testing import REPO_ROOT

DEMO_CFG = osp.join(
    REPO_ROOT, 'configs/demo/mask-rcnn_vit-demo-mpvg_sfp_1xb8-8e_demo-shapes.py')
ARCH = dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=96)


def _cfg(variant, pe_mode='mpvg'):
    cfg = Config.fromfile(DEMO_CFG)
    model = copy.deepcopy(cfg.model)
    if variant == 'sfp':
        model.backbone.update(arch=ARCH, pe_mode=pe_mode, init_cfg=None,
                              global_attn_indexes=(1, 3))
        if pe_mode in ('cls', 'lape'):  # windows need a token grid only
            model.backbone.with_cls_token = False
        model.neck.in_channels = 48
    else:
        model.backbone = dict(
            type='MPVGViTAdapter', arch=ARCH, pe_mode=pe_mode, img_size=128,
            patch_size=8, window_size=4, global_attn_indexes=(1, 3),
            conv_inplane=16, deform_num_heads=3,
            interaction_indexes=[[0, 0], [1, 1], [2, 2], [3, 3]])
        model.neck = dict(type='FPN', in_channels=[48] * 4,
                          out_channels=64, num_outs=5)
    return cfg, model


def _batch(cfg, root, split):
    from mmdet.registry import DATASETS
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset_cfg = copy.deepcopy(loader.dataset)
    dataset_cfg.update(data_root=root, indices=2)
    dataset = DATASETS.build(dataset_cfg)
    return pseudo_collate([dataset[0], dataset[1]])


def _build(variant, pe_mode='mpvg'):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg, model_cfg = _cfg(variant, pe_mode)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return cfg, model


@pytest.mark.parametrize('variant', ['sfp', 'adapter'])
def test_loss_and_backward(variant, demo_shapes_coco):
    cfg, model = _build(variant)
    model.train()
    data = model.data_preprocessor(_batch(cfg, demo_shapes_coco, 'train'),
                                   True)
    assert data['inputs'].shape[-2:] == (128, 128)
    losses = model(**data, mode='loss')
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
                'loss_mask'):
        assert key in losses, sorted(losses)
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    named = dict(model.named_parameters())
    # gradients reach the PE, the blocks, the neck and all heads
    vit = 'backbone.vit.' if variant == 'adapter' else 'backbone.'
    for name in (vit + 'pe.pos_embed', vit + 'blocks.0.attn.qkv.weight',
                 vit + 'pe.last_norm.weight',
                 'rpn_head.rpn_conv.weight',
                 'roi_head.bbox_head.fc_cls.weight',
                 'roi_head.mask_head.conv_logits.weight'):
        grad = named[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    neck_grads = [p.grad for n, p in named.items() if n.startswith('neck.')]
    assert all(g is not None for g in neck_grads)


@pytest.mark.parametrize('variant,pe_mode', [('sfp', 'mpvg'),
                                             ('adapter', 'mpvg'),
                                             ('sfp', 'lape'),
                                             ('adapter', 'cls')])
def test_predict_output_structure(variant, pe_mode, demo_shapes_coco):
    cfg, model = _build(variant, pe_mode)
    model.eval()
    batch = _batch(cfg, demo_shapes_coco, 'val')
    with torch.no_grad():
        results = model.test_step(batch)
    assert len(results) == 2
    for sample in results:
        h, w = sample.ori_shape  # masks come back at the original size
        assert (h, w) == (256, 256)
        pred = sample.pred_instances
        n = len(pred)
        assert n <= cfg.model.test_cfg.rcnn.max_per_img
        assert pred.bboxes.shape == (n, 4)
        assert pred.scores.shape == (n, )
        assert pred.labels.shape == (n, ) and pred.labels.dtype == torch.long
        assert pred.masks.shape == (n, h, w) and pred.masks.dtype == torch.bool
        if n:
            assert 0 <= int(pred.labels.min()) and int(pred.labels.max()) < 5
            assert float(pred.scores.min()) >= cfg.model.test_cfg.rcnn.score_thr
            assert (pred.bboxes[:, 2:] >= pred.bboxes[:, :2]).all()


def test_backbone_from_classification_checkpoint(tmp_path):
    """The demo detector's plain ViT loads a classifier's backbone: every
    key matched, pos_0 resized to the detection grid, nothing dropped."""
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    classifier = CLS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=ARCH, img_size=32, patch_size=4,
                      pe_mode='mpvg'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=48)))
    ckpt = str(tmp_path / 'cls.pth')
    state = classifier.state_dict()
    torch.save({'state_dict': state, 'meta': {}}, ckpt)

    init_default_scope('mmdet')
    cfg, model_cfg = _cfg('sfp')
    model_cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=ckpt,
                                       prefix='backbone.')
    detector = DET.build(model_cfg)
    detector.init_weights()
    det_state = {k: v for k, v in detector.state_dict().items()
                 if k.startswith('backbone.')}
    cls_state = {k: v for k, v in state.items() if k.startswith('backbone.')}
    assert set(det_state) == set(cls_state)  # nothing dropped or missing
    for key, value in cls_state.items():
        if key == 'backbone.pe.pos_embed':
            assert value.shape == (1, 8 * 8, 48)  # 32 px / patch 4
            assert det_state[key].shape == (1, 32 * 32, 48)  # 128 / 4
        else:
            assert torch.equal(det_state[key], value), key
