"""mmpvg.converters.mmpretrain_keys: mmpretrain's and mmseg's ViT ->
MPVGViT, checked by outputs against the upstream model classes.

The sources are mmpretrain's own ``VisionTransformer`` / ``ImageClassifier``
and mmseg's own ``VisionTransformer`` / ``EncoderDecoder``, with random
weights (every LayerNorm randomised); the converted MPVGViT must give their
features and logits to 1e-5, also at input sizes the PE is interpolated for.
"""
import pytest
import torch
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmseg.registry import MODELS as SEG_MODELS

import mmpvg  # noqa: F401
from mmpvg.converters import (convert_mmpretrain_to_mpvg,
                              convert_timm_to_mpvg, infer_vit_arch,
                              inspect_mmpretrain_vit, is_mmpretrain_vit,
                              is_mmseg_vit)
from mmpvg.converters.arch import arch_preset
from mmpvg.converters.formats import detect_format
from mmpvg.converters.mmpretrain_keys import avg_norm_neck_cfg
from mmpvg.models import MPVGViT
from mmpvg.testing.references import (ARCH, CLASSES, DEPTH, EMBED, FFN, HEADS,
                                      IMG, PATCH, TOL, randomise, timm_vit)

# Inputs the PE is interpolated for (and one not a multiple of the patch).
OTHER_SIZES = ((48, 40), (45, 37))


def upstream_vit(seed=0, **kwargs):
    cfg = dict(type='VisionTransformer', arch=ARCH, img_size=IMG,
               patch_size=PATCH)
    cfg.update(kwargs)
    model = PRETRAIN_MODELS.build(cfg)
    randomise(model, seed)  # (its train() and eval() return None)
    return model


def upstream_classifier(seed=0, head='VisionTransformerClsHead', **backbone):
    cfg = dict(type='VisionTransformer', arch=ARCH, img_size=IMG,
               patch_size=PATCH, **backbone)
    return randomise(PRETRAIN_MODELS.build(dict(
        type='ImageClassifier', backbone=cfg,
        head=dict(type=head, num_classes=CLASSES, in_channels=EMBED))), seed)


def our_classifier(state_dict, **backbone):
    neck = (avg_norm_neck_cfg(EMBED) if 'neck.norm.weight' in state_dict
            else None)
    pe_mode = 'cls' if 'backbone.cls_token' in state_dict else 'gap'
    model = PRETRAIN_MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=ARCH, img_size=IMG,
                      patch_size=PATCH, pe_mode=pe_mode, **backbone),
        neck=neck,
        head=dict(type='LinearClsHead', num_classes=CLASSES,
                  in_channels=EMBED))).eval()
    model.load_state_dict(state_dict, strict=True)
    return model


def seg_vit(seed=0, **kwargs):
    cfg = dict(type='VisionTransformer', img_size=IMG, patch_size=PATCH,
               embed_dims=EMBED, num_layers=DEPTH, num_heads=HEADS,
               mlp_ratio=FFN // EMBED, norm_cfg=dict(type='LN', eps=1e-6))
    cfg.update(kwargs)
    model = SEG_MODELS.build(cfg)
    randomise(model, seed)  # (its train() and eval() return None)
    return model


def backbone_of(state_dict):
    return {k[len('backbone.'):]: v for k, v in state_dict.items()
            if k.startswith('backbone.')}


def assert_outputs_close(ours, theirs, images, dtype=torch.float32):
    gen = torch.Generator().manual_seed(7)
    ours.to(dtype)
    theirs.to(dtype)
    with torch.no_grad():
        for x in (images, *(torch.randn(2, 3, *s, generator=gen)
                            for s in OTHER_SIZES)):
            a, b = ours(x.to(dtype)), theirs(x.to(dtype))
            assert len(a) == len(b)
            for u, v in zip(a, b):
                torch.testing.assert_close(u, v, **TOL)


# ---------------------------------------------------------------------- #
# mmpretrain
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('head', ['VisionTransformerClsHead',
                                  'LinearClsHead'])
def test_mmpretrain_classifier_gives_its_logits(images, head):
    src = upstream_classifier(seed=0, head=head)
    converted = convert_mmpretrain_to_mpvg(src.state_dict())
    assert 'head.fc.weight' in converted
    model = our_classifier(converted)
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'),
                                   src(images, mode='tensor'), **TOL)
    assert_outputs_close(model.backbone, src.backbone, images)
    arch = infer_vit_arch(converted)
    assert (arch['pe_mode'], arch['num_classes'], arch['final_norm']) == (
        'cls', CLASSES, True)


@pytest.mark.parametrize('with_cls_token', [True, False])
def test_avg_featmap_norm_becomes_a_neck(images, with_cls_token):
    # mmpretrain: ln2(mean(ln1(x))); MPVGViT mean(norm(x)) + LinearNeck(ln2)
    src = upstream_classifier(seed=1, with_cls_token=with_cls_token,
                              out_type='avg_featmap')
    info = inspect_mmpretrain_vit(src.state_dict())
    assert info['avg_norm'] and info['with_cls_token'] == with_cls_token
    converted = convert_mmpretrain_to_mpvg(src.state_dict())
    assert torch.equal(converted['neck.fc.weight'], torch.eye(EMBED))
    assert torch.equal(converted['neck.norm.weight'],
                       src.state_dict()['backbone.ln2.weight'])
    model = our_classifier(converted, out_type='avg_featmap')
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'),
                                   src(images, mode='tensor'), **TOL)

    # Dropped, ln2 is all that is missing: ln2(ours) is mmpretrain's output.
    dropped = convert_mmpretrain_to_mpvg(src.state_dict(), avg_norm='drop')
    assert not any(k.startswith('neck.') for k in dropped)
    backbone = MPVGViT(arch=ARCH, img_size=IMG, patch_size=PATCH,
                       pe_mode='cls' if with_cls_token else 'gap',
                       out_type='avg_featmap').eval()
    backbone.load_state_dict(backbone_of(dropped), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(src.backbone.ln2(backbone(images)[0]),
                                   src.backbone(images)[0], **TOL)


@pytest.mark.parametrize('kwargs,ours', [
    (dict(with_cls_token=False, out_type='featmap', out_indices=[0, -1]),
     dict(pe_mode='gap', out_type='featmap', out_indices=(0, -1))),
    (dict(out_type='raw', qkv_bias=False, final_norm=False),
     dict(pe_mode='cls', out_type='raw', qkv_bias=False, final_norm=False)),
])
def test_mmpretrain_backbone_features(images, kwargs, ours):
    src = upstream_vit(seed=2, **kwargs)
    converted = convert_mmpretrain_to_mpvg(src.state_dict())  # bare, no head
    assert all(k.startswith('backbone.') for k in converted)
    model = MPVGViT(arch=ARCH, img_size=IMG, patch_size=PATCH, **ours).eval()
    model.load_state_dict(backbone_of(converted), strict=True)
    assert_outputs_close(model, src, images)


def test_mmpretrain_deit_preset(images):
    src = upstream_vit(seed=3, arch='deit-tiny', img_size=32, patch_size=16)
    converted = convert_mmpretrain_to_mpvg(src.state_dict())
    assert arch_preset(infer_vit_arch(converted)) == 'deit-tiny'
    model = MPVGViT(arch='deit-tiny', pe_mode='cls', img_size=32).eval()
    model.load_state_dict(backbone_of(converted), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(images)[0], src(images)[0], **TOL)


# ---------------------------------------------------------------------- #
# mmseg
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('kwargs,ours', [
    # mmseg's defaults: class token, no final norm, no patch bias
    (dict(out_indices=(0, 2)),
     dict(pe_mode='cls', final_norm=False, out_indices=(0, 2))),
    (dict(with_cls_token=False),
     dict(pe_mode='cls', with_cls_token=False, final_norm=False)),
    (dict(final_norm=True, qkv_bias=False, patch_bias=True,
          norm_cfg=dict(type='LN')),
     dict(pe_mode='cls', qkv_bias=False,
          norm_cfg=dict(type='LN', eps=1e-5))),
])
def test_mmseg_backbone_features(images, kwargs, ours):
    src = seg_vit(seed=4, **kwargs)
    info = inspect_mmpretrain_vit(src.state_dict())
    assert info['format'] == 'mmseg' and info['prefix'] == ''
    converted = convert_mmpretrain_to_mpvg(src.state_dict())
    if not info['patch_bias']:
        assert not converted['backbone.patch_embed.proj.bias'].any()
    if not info['proj_bias']:
        assert not converted['backbone.blocks.2.attn.proj.bias'].any()
    model = MPVGViT(arch=ARCH, img_size=IMG, patch_size=PATCH,
                    out_type='featmap', **ours).eval()
    model.load_state_dict(backbone_of(converted), strict=True)
    # In float64: mmseg's attention is nn.MultiheadAttention, whose float32
    # rounding differs from SDPA's by ~1e-6 of features that reach ~30
    # without final norm; in float64 any mapping error would still show.
    assert_outputs_close(model, src, images, dtype=torch.float64)


def test_mmseg_segmentor_keeps_its_heads(images):
    head = dict(type='FCNHead', in_channels=EMBED, channels=8, num_convs=1,
                num_classes=3, norm_cfg=None, align_corners=False)
    src = SEG_MODELS.build(dict(
        type='EncoderDecoder',
        backbone=dict(type='VisionTransformer', img_size=IMG,
                      patch_size=PATCH, embed_dims=EMBED, num_layers=DEPTH,
                      num_heads=HEADS, mlp_ratio=FFN // EMBED,
                      norm_cfg=dict(type='LN', eps=1e-6)),
        decode_head=head))
    randomise(src, 5)
    src.eval()
    state = src.state_dict()
    converted = convert_mmpretrain_to_mpvg(state)
    heads = [k for k in state if not k.startswith('backbone.')]
    assert heads and all(converted[k] is state[k] for k in heads)
    ours = SEG_MODELS.build(dict(
        type='EncoderDecoder',
        backbone=dict(type='MPVGViT', arch=ARCH, img_size=IMG,
                      patch_size=PATCH, pe_mode='cls', final_norm=False,
                      out_type='featmap'),
        decode_head=head)).eval()
    ours.load_state_dict(converted, strict=True)
    # In float64, as test_mmseg_backbone_features.
    src.double()
    ours.double()
    with torch.no_grad():
        torch.testing.assert_close(ours(images.double(), mode='tensor'),
                                   src(images.double(), mode='tensor'),
                                   **TOL)


# ---------------------------------------------------------------------- #
# detection and refusals
# ---------------------------------------------------------------------- #
def test_format_detection():
    pretrain = upstream_classifier().state_dict()
    seg = seg_vit().state_dict()
    timm = timm_vit().state_dict()
    assert is_mmpretrain_vit(pretrain) and not is_mmseg_vit(pretrain)
    assert is_mmseg_vit(seg) and not is_mmpretrain_vit(seg)
    assert not is_mmpretrain_vit(timm) and not is_mmseg_vit(timm)
    # the format module the load path uses agrees
    assert detect_format(pretrain) == 'mmpretrain'
    assert detect_format(seg) == 'mmseg'
    mpvg = convert_mmpretrain_to_mpvg(pretrain)
    assert not is_mmpretrain_vit(mpvg) and detect_format(mpvg) == 'mmpvg'


def test_refuses_other_formats():
    with pytest.raises(ValueError, match='Not an mmpretrain or mmseg '
                       'VisionTransformer.*deit2mpvg.py'):
        convert_mmpretrain_to_mpvg(timm_vit().state_dict())
    mpvg = convert_timm_to_mpvg(timm_vit().state_dict())
    with pytest.raises(ValueError, match='already an mmpvg checkpoint'):
        convert_mmpretrain_to_mpvg(mpvg)
    # and the timm converter names this one for an mmpretrain file
    with pytest.raises(ValueError, match='not a timm checkpoint. It is an '
                       'mmpretrain VisionTransformer checkpoint; convert it '
                       'with tools/model_converters/mmpretrain2mpvg.py'):
        convert_timm_to_mpvg(upstream_classifier().state_dict())


@pytest.mark.parametrize('build,message', [
    (lambda: PRETRAIN_MODELS.build(dict(
        type='DistilledVisionTransformer', arch=ARCH, img_size=IMG,
        patch_size=PATCH)), 'distilled DeiT'),
    (lambda: upstream_vit(pre_norm=True), 'LayerNorm before the blocks'),
    (lambda: upstream_vit(layer_scale_init_value=0.1), 'layer scale'),
    (lambda: seg_vit(patch_norm=True), 'followed by a norm'),
    (lambda: PRETRAIN_MODELS.build(dict(
        type='ImageClassifier', backbone=dict(
            type='VisionTransformer', arch=ARCH, img_size=IMG,
            patch_size=PATCH),
        head=dict(type='VisionTransformerClsHead', num_classes=CLASSES,
                  in_channels=EMBED, hidden_dim=16))), 'hidden layer'),
])
def test_refuses_what_mpvgvit_does_not_compute(build, message):
    with pytest.raises(ValueError, match=f'Cannot convert: .*{message}.*'
                       'Accepted: an mmpretrain VisionTransformer'):
        convert_mmpretrain_to_mpvg(build().state_dict())


def test_refuses_unknown_missing_and_bad_arguments():
    state = upstream_classifier().state_dict()
    with pytest.raises(ValueError, match=r"keys this converter does not "
                       r"know: \['neck.fc.weight'\]"):
        convert_mmpretrain_to_mpvg({**state,
                                    'neck.fc.weight': torch.zeros(2)})
    partial = {k: v for k, v in state.items()
               if k != 'backbone.layers.1.ffn.layers.1.weight'}
    with pytest.raises(ValueError, match=r"lacks what 1 MPVGViT key\(s\) "
                       r"need: \['backbone.blocks.1.mlp.fc2.weight'\]"):
        convert_mmpretrain_to_mpvg(partial)
    bad_pe = {**state, 'backbone.pos_embed': torch.zeros(1, 15, EMBED)}
    with pytest.raises(ValueError, match=r'pos_embed has shape \(1, 15, 32\)'
                       r'.*one class-token row'):
        convert_mmpretrain_to_mpvg(bad_pe)
    with pytest.raises(ValueError, match="avg_norm='keep'; choose from "
                       r"\('neck', 'drop'\)"):
        convert_mmpretrain_to_mpvg(state, avg_norm='keep')
