"""mmpvg.converters.vit_keys: timm/DeiT <-> MPVGViT 'cls', LaPE -> 'lape',
and the checkpoints they refuse.

Every conversion is checked by outputs, not only by key names: the source
model and the converted one run on the same images with random weights
(every LayerNorm randomised, so none is the identity) and must agree to
1e-5 (see mmpvg.testing.references).
"""
import pytest
import torch
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import VisionTransformer

import mmpvg  # noqa: F401
from mmpvg.converters import (convert_lape_to_mpvg, convert_mpvg_to_timm,
                              convert_timm_to_mpvg, infer_vit_arch)
from mmpvg.models import MPVGViT
from mmpvg.testing.references import (ARCH, CLASSES, DEPTH, EMBED, FFN, IMG,
                                      PATCH, TOL, LaPEReference, classifier,
                                      randomise, timm_kwargs, timm_vit)


# ---------------------------------------------------------------------- #
# timm/DeiT <-> MPVGViT 'cls'
# ---------------------------------------------------------------------- #
def test_timm_to_mpvg_gives_timm_logits(images):
    src = timm_vit(seed=0)
    converted = convert_timm_to_mpvg(src.state_dict())
    model = classifier('cls')
    model.load_state_dict(converted, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'), src(images),
                                   **TOL)
    arch = infer_vit_arch(converted)
    assert arch == dict(
        embed_dims=EMBED, num_layers=DEPTH, feedforward_channels=FFN,
        qkv_bias=True, patch_size=PATCH, patch_resolution=(4, 4),
        img_size=IMG, in_channels=3, pe_mode='cls', layerwise_pe=False,
        pe_first_block=False, last_ln_pe=None, final_norm=True,
        num_classes=CLASSES)


def test_mpvg_to_timm_reverse_and_round_trip(images):
    # MPVGViT 'cls' -> timm: the timm model reproduces MPVGViT's logits.
    model = classifier('cls', seed=1)
    timm_sd = convert_mpvg_to_timm(model.state_dict())
    target = VisionTransformer(**timm_kwargs()).eval()
    target.load_state_dict(timm_sd, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(target(images), model(images,
                                                         mode='tensor'),
                                   **TOL)

    # timm -> MPVGViT -> timm gives back the very same state dict.
    src = timm_vit(seed=2)
    back = convert_mpvg_to_timm(convert_timm_to_mpvg(src.state_dict()))
    original = src.state_dict()
    assert list(back) == list(original)
    for key in original:
        assert torch.equal(back[key], original[key]), key


def test_headless_and_no_qkv_bias_timm(images):
    src = timm_vit(seed=3, num_classes=0, qkv_bias=False)
    converted = convert_timm_to_mpvg(src.state_dict())
    assert not any(k.startswith('head') for k in converted)
    backbone = MPVGViT(arch=ARCH, pe_mode='cls', img_size=IMG,
                       patch_size=PATCH, qkv_bias=False).eval()
    backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in converted.items()}, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[0], src(images), **TOL)
    assert convert_mpvg_to_timm(converted).keys() == src.state_dict().keys()


# ---------------------------------------------------------------------- #
# LaPE -> MPVGViT 'lape'
# ---------------------------------------------------------------------- #
def test_lape_to_mpvg_gives_lape_logits(images):
    src = randomise(LaPEReference(**timm_kwargs()), seed=4)
    assert 'blocks.2.pe_norm.weight' in src.state_dict()
    converted = convert_lape_to_mpvg(src.state_dict())
    assert torch.equal(converted['backbone.pe.norms.1.bias'],
                       src.blocks[1].pe_norm.bias)
    model = classifier('lape')
    model.load_state_dict(converted, strict=True)
    with torch.no_grad():
        out = model(images, mode='tensor')
        torch.testing.assert_close(out, src(images), **TOL)
        # The PE really matters here: a timm ViT (PE at the input, no
        # pe_norm) with the same shared weights computes something else.
        plain = VisionTransformer(**timm_kwargs()).eval()
        plain.load_state_dict({k: v for k, v in src.state_dict().items()
                               if 'pe_norm' not in k})
        assert (plain(images) - out).abs().max() > 1e-2
    assert infer_vit_arch(converted)['pe_mode'] == 'lape'


# ---------------------------------------------------------------------- #
# what cannot be converted
# ---------------------------------------------------------------------- #
def test_rejects_distilled_deit():
    state = randomise(VisionTransformerDistilled(**timm_kwargs()),
                      seed=7).state_dict()
    with pytest.raises(ValueError, match=r'distilled DeiT checkpoint '
                       r'\(dist_token / head_dist\).*convert the '
                       r'non-distilled DeiT.*Accepted: a timm/DeiT'):
        convert_timm_to_mpvg(state)


def test_rejects_timm_without_class_token():
    # GAP with the final norm per token (fc_norm=False): no fc_norm key,
    # but no cls_token either.
    state = timm_vit(class_token=False, global_pool='avg',
                     fc_norm=False).state_dict()
    with pytest.raises(ValueError,
                       match=r'The timm checkpoint has no cls_token: it is '
                       r'not a class-token ViT.*converts class-token models '
                       r"only \(MPVGViT pe_mode 'cls' / 'lape'\)"):
        convert_timm_to_mpvg(state)
    state = timm_vit(class_token=False, global_pool='avg').state_dict()
    with pytest.raises(ValueError, match=r'GAP timm model \(fc_norm'):
        convert_timm_to_mpvg(state)


def test_rejects_mismatched_checkpoints():
    timm_sd = timm_vit().state_dict()
    lape_sd = randomise(LaPEReference(**timm_kwargs()), seed=0).state_dict()
    with pytest.raises(ValueError, match=r'LaPE checkpoint.*lape2mpvg\.py'):
        convert_timm_to_mpvg(lape_sd)
    with pytest.raises(ValueError, match=r'It has no pe_norm at all.*'
                       r'deit2mpvg\.py'):
        convert_lape_to_mpvg(timm_sd)
    partial = {k: v for k, v in lape_sd.items()
               if not k.startswith('blocks.1.pe_norm')}
    with pytest.raises(ValueError, match=r"lacks \['blocks\.1\.pe_norm"):
        convert_lape_to_mpvg(partial)

    broken = dict(timm_sd, **{'blocks.0.ls1.gamma': torch.ones(EMBED)})
    with pytest.raises(ValueError, match='LayerScale'):
        convert_timm_to_mpvg(broken)
    broken = dict(timm_sd, extra_thing=torch.ones(1))
    with pytest.raises(ValueError, match=r"does not know: \['extra_thing'\]"):
        convert_timm_to_mpvg(broken)
    broken = {k: v for k, v in timm_sd.items() if k != 'blocks.2.norm2.bias'}
    with pytest.raises(ValueError, match=r"lacks 1 required key\(s\): "
                       r"\['blocks\.2\.norm2\.bias'\]"):
        convert_timm_to_mpvg(broken)
    broken = dict(timm_sd, pos_embed=timm_sd['pos_embed'][:, 1:])
    with pytest.raises(ValueError, match='no class-token row'):
        convert_timm_to_mpvg(broken)


@pytest.mark.parametrize('pe_mode', ['lape', 'mpvg', 'gap'])
def test_reverse_rejects_non_cls_models(pe_mode):
    state = classifier(pe_mode).state_dict()
    match = ('no backbone.cls_token, so it is a GAP model' if pe_mode == 'gap'
             else "layer-wise PE LayerNorms .* Only MPVGViT pe_mode='cls'")
    with pytest.raises(ValueError, match=match):
        convert_mpvg_to_timm(state)
