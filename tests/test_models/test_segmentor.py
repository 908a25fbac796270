"""mmseg EncoderDecoder + UperNet on MPVG backbones, on the CPU.

Two tiny segmentors, the layouts of configs/upernet: the ViT-Adapter
(4 maps at strides 4/8/16/32) and the plain ViT tapped at four blocks with
mmseg's MultiLevelNeck. Inputs are non-square and not multiples of 16 or 32.
"""
import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

import mmpvg  # noqa: F401

PE_MODES = ('cls', 'gap', 'lape', 'pvg', 'mpvg')
ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
NUM_CLASSES = 5
H, W = 50, 77  # neither square nor a multiple of 16 or 32


def heads():
    norm_cfg = dict(type='BN')
    return dict(
        decode_head=dict(
            type='UPerHead', in_channels=[32] * 4, in_index=[0, 1, 2, 3],
            pool_scales=(1, 2, 3, 6), channels=16, dropout_ratio=0.1,
            num_classes=NUM_CLASSES, norm_cfg=norm_cfg, align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        auxiliary_head=dict(
            type='FCNHead', in_channels=32, in_index=2, channels=8,
            num_convs=1, concat_input=False, dropout_ratio=0.1,
            num_classes=NUM_CLASSES, norm_cfg=norm_cfg, align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)))


def segmentor(kind, pe_mode='mpvg', test_cfg=None, backbone_init_cfg=None):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    if kind == 'adapter':
        backbone = dict(
            type='MPVGViTAdapter', arch=ARCH, pe_mode=pe_mode, img_size=64,
            patch_size=16, window_size=0, global_attn_indexes=(),
            conv_inplane=8, deform_num_heads=2, n_points=2,
            interaction_indexes=[[0, 0], [1, 1], [2, 2], [3, 3]],
            drop_path_rate=0., init_cfg=backbone_init_cfg)
        neck = None
    else:
        backbone = dict(
            type='MPVGViT', arch=ARCH, pe_mode=pe_mode, img_size=64,
            patch_size=16, out_type='featmap', out_indices=(0, 1, 2, 3),
            with_cls_token=False if pe_mode in ('cls', 'lape') else None,
            init_cfg=backbone_init_cfg)
        neck = dict(type='MultiLevelNeck', in_channels=[32] * 4,
                    out_channels=32, scales=[4, 2, 1, 0.5])
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.] * 3,
                               std=[1.] * 3, pad_val=0, seg_pad_val=255),
        backbone=backbone, neck=neck, **heads(),
        test_cfg=ConfigDict(test_cfg or dict(mode='whole'))))
    model.init_weights()
    return model


def samples(batch, h=H, w=W):
    from mmseg.structures import SegDataSample
    out = []
    for _ in range(batch):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, NUM_CLASSES, (1, h, w)))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            pad_shape=(h, w)))
        out.append(s)
    return out


def expected_shapes(kind, h=H, w=W):
    if kind == 'adapter':
        return [(math.ceil(h / s), math.ceil(w / s)) for s in (4, 8, 16, 32)]
    gh, gw = math.ceil(h / 16), math.ceil(w / 16)
    # MultiLevelNeck resizes by scale_factor (sizes rounded down)
    return [(int(gh * s), int(gw * s)) for s in (4, 2, 1, 0.5)]


@pytest.mark.parametrize('kind', ['adapter', 'taps'])
@pytest.mark.parametrize('pe_mode', PE_MODES)
def test_feature_shapes(kind, pe_mode):
    model = segmentor(kind, pe_mode).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(2, 3, H, W))
    assert [tuple(f.shape[-2:]) for f in feats] == expected_shapes(kind)
    assert all(f.shape[:2] == (2, 32) for f in feats)
    assert all(torch.isfinite(f).all() for f in feats)


@pytest.mark.parametrize('kind', ['adapter', 'taps'])
@pytest.mark.parametrize('pe_mode', PE_MODES)
def test_loss_and_backward(kind, pe_mode):
    model = segmentor(kind, pe_mode).train()
    losses = model.loss(torch.randn(2, 3, H, W), samples(2))
    assert set(losses) >= {'decode.loss_ce', 'aux.loss_ce'}
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None]
    assert not missing, missing  # every parameter takes part
    vit = model.backbone.vit if kind == 'adapter' else model.backbone
    assert vit.pe.pos_embed.grad.abs().sum() > 0
    if pe_mode == 'mpvg':
        assert vit.pe.last_norm.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('kind', ['adapter', 'taps'])
@pytest.mark.parametrize('pe_mode', ['cls', 'mpvg'])
def test_slide_inference_on_odd_sizes(kind, pe_mode):
    # windows smaller than the image, stride not dividing it: 3 x 3 windows,
    # the last ones shifted back to end at the border
    test_cfg = dict(mode='slide', crop_size=(32, 48), stride=(15, 20))
    model = segmentor(kind, pe_mode, test_cfg).eval()
    calls = []
    model.backbone.register_forward_hook(
        lambda m, args, out: calls.append(tuple(args[0].shape[-2:])))
    img = torch.randn(1, 3, H, W)
    with torch.no_grad():
        (result, ) = model.predict(img, samples(1))
    assert len(calls) == 3 * 3 and set(calls) == {(32, 48)}
    assert result.seg_logits.data.shape == (NUM_CLASSES, H, W)
    assert result.pred_sem_seg.data.shape == (1, H, W)
    assert result.pred_sem_seg.data.max() < NUM_CLASSES

    # a window the size of the image is the whole-image prediction
    model.test_cfg = ConfigDict(mode='slide', crop_size=(H, W),
                                stride=(H, W))
    with torch.no_grad():
        slide = model.predict(img, samples(1))[0].seg_logits.data
    model.test_cfg = ConfigDict(mode='whole')
    with torch.no_grad():
        whole = model.predict(img, samples(1))[0].seg_logits.data
    torch.testing.assert_close(slide, whole, rtol=1e-4, atol=1e-4)


def test_pretrained_classifier_backbone_loads_with_resized_pe(tmp_path):
    """A classification checkpoint (8x8 grid) initialises the segmentor's
    backbone through init_cfg, pos_0 resized to the segmentation grid."""
    from mmpretrain.models.utils import resize_pos_embed
    from mmpretrain.registry import MODELS as CLS_MODELS
    from mmseg.registry import MODELS
    init_default_scope('mmpretrain')
    cls = CLS_MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=ARCH, img_size=128, patch_size=16,
                      pe_mode='mpvg'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32)))
    ckpt = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': cls.state_dict()}, ckpt)
    init_default_scope('mmseg')
    for kind in ('adapter', 'taps'):
        model = segmentor(kind, backbone_init_cfg=dict(
            type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
        expected = resize_pos_embed(
            cls.backbone.pe.pos_embed.detach(), (8, 8), (4, 4), 'bicubic',
            num_extra_tokens=0)
        vit = model.backbone.vit if kind == 'adapter' else model.backbone
        torch.testing.assert_close(vit.pe.pos_embed.detach(), expected)
        torch.testing.assert_close(
            vit.blocks[3].attn.qkv.weight.detach(),
            cls.backbone.blocks[3].attn.qkv.weight.detach())
        assert MODELS.get(type(model.backbone).__name__) is not None
