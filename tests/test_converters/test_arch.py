"""mmpvg.converters.arch: infer_vit_arch / format_backbone_cfg on every PE
structure and ablation, and the arch presets they name.

For each combination of switches an MPVGViT is built, its state dict is
read back, and the config that the converters print is built again: the
weights must load into it strictly. Where the state dict shows every switch
the rebuilt model must also compute the same outputs; where a switch cannot
be seen in weights the printed config must say so.
"""
import pytest
import torch
from mmpretrain.registry import MODELS

import mmpvg  # noqa: F401
from mmpvg.converters import (backbone_cfg, format_backbone_cfg,
                              infer_vit_arch)
from mmpvg.models import MPVGViT

EMBED, HEADS, FFN, IMG, PATCH = 32, 4, 64, 32, 8


def arch(num_layers=3):
    return dict(embed_dims=EMBED, num_layers=num_layers, num_heads=HEADS,
                feedforward_channels=FFN)


def build(num_layers=3, **kwargs):
    kwargs.setdefault('img_size', IMG)
    kwargs.setdefault('patch_size', PATCH)
    model = MPVGViT(arch=arch(num_layers), **kwargs)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random LayerNorms: none is the identity
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    return model.eval()


def rebuild_from_text(text):
    """Build the backbone the printed config describes (heads filled in)."""
    namespace = {}
    exec(text.replace('<not stored in weights>', str(HEADS)), namespace)
    cfg = dict(namespace['backbone'])
    return MPVGViT(**{k: v for k, v in cfg.items() if k != 'type'}).eval()


# (switches the model is built with, what infer_vit_arch reads, the
# switches the printed config names besides pe_mode)
VISIBLE = [
    (dict(pe_mode='cls'), 'cls', {}),
    (dict(pe_mode='gap'), 'gap', {}),
    (dict(pe_mode='lape'), 'lape', {}),
    (dict(pe_mode='pvg'), 'pvg', {}),
    (dict(pe_mode='mpvg'), 'mpvg', {}),
    # PE to block 0 without class token: the chain starts at block 0.
    (dict(pe_mode='mpvg', pe_first_block=True), 'mpvg',
     dict(pe_first_block=True)),
    (dict(pe_mode='pvg', pe_first_block=True), 'pvg',
     dict(pe_first_block=True)),
    (dict(pe_mode='lape', pe_first_block=False), 'lape',
     dict(pe_first_block=False)),
    # Fig. 5b, written either way: GAP + Last-LN PE, no layer-wise PE.
    (dict(pe_mode='mpvg', layerwise_pe=False), 'gap', dict(last_ln_pe=0)),
    (dict(pe_mode='gap', last_ln_pe=0), 'gap', dict(last_ln_pe=0)),
    (dict(pe_mode='mpvg', last_ln_pe=False, final_norm=False), 'pvg',
     dict(final_norm=False)),
    (dict(pe_mode='gap', final_norm=False), 'gap', dict(final_norm=False)),
    (dict(pe_mode='cls', qkv_bias=False, in_channels=1), 'cls',
     dict(in_channels=1)),
]


@pytest.mark.parametrize('kwargs, pe_mode, switches', VISIBLE,
                         ids=[str(case[0]) for case in VISIBLE])
def test_visible_structures_rebuild_the_same_model(kwargs, pe_mode,
                                                   switches):
    model = build(**kwargs)
    state = model.state_dict()
    inferred = infer_vit_arch(state, prefix='')
    assert inferred['pe_mode'] == pe_mode

    cfg = backbone_cfg(inferred, num_heads=HEADS)
    named = {k: v for k, v in cfg.items()
             if k not in ('type', 'arch', 'pe_mode', 'img_size',
                          'patch_size')}
    assert named == switches
    text = format_backbone_cfg(inferred)
    first_line = text.split('\n')[0]
    for name, value in switches.items():
        assert f'{name}={value!r}' in first_line

    images = torch.randn(2, kwargs.get('in_channels', 3), IMG, IMG,
                         generator=torch.Generator().manual_seed(1))
    for rebuilt in (MPVGViT(**{k: v for k, v in cfg.items()
                               if k != 'type'}).eval(),
                    rebuild_from_text(text)):
        rebuilt.load_state_dict(state, strict=True)
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(images), model(images),
                                       atol=1e-5, rtol=1e-5)


# (switches the model is built with, what infer_vit_arch reads, the
# assumption the printed config must list)
INVISIBLE = [
    (dict(pe_mode='mpvg', pe_at_input=False), 'mpvg', 'pe_at_input=True'),
    (dict(pe_mode='mpvg', hierarchical_pe=False), 'mpvg',
     'hierarchical_pe=True'),
    (dict(pe_mode='lape', hierarchical_pe=False), 'lape',
     'hierarchical_pe=True'),
    (dict(pe_mode='gap', pe_at_input=False), 'gap', 'pe_at_input=True'),
    # A LaPE-style chain without class token reads as PVG from block 0.
    (dict(pe_mode='pvg', pe_first_block=True, pe_at_input=False), 'pvg',
     'pe_at_input=True'),
    (dict(pe_mode='mpvg', num_layers=12, last_ln_pe=5), 'mpvg',
     "last_ln_pe=0 (LN'_last normalises pos_k; any k in [0, 11]"),
]


@pytest.mark.parametrize('kwargs, pe_mode, assumed', INVISIBLE,
                         ids=[str(case[0]) for case in INVISIBLE])
def test_invisible_switches_are_named_in_the_config(kwargs, pe_mode,
                                                    assumed):
    kwargs = dict(kwargs)
    model = build(num_layers=kwargs.pop('num_layers', 3), **kwargs)
    state = model.state_dict()
    inferred = infer_vit_arch(state, prefix='')
    assert inferred['pe_mode'] == pe_mode
    text = format_backbone_cfg(inferred)
    notes = text.split('\n')[1:]
    assert notes[0] == ('# Not stored in the weights (set them as trained '
                        'if they differ):')
    assert any(line.startswith(f'#   {assumed}') for line in notes), text
    # The config loads the weights; the user sets the listed switch.
    rebuild_from_text(text).load_state_dict(state, strict=True)


def test_notes_list_only_what_matters():
    text = format_backbone_cfg(infer_vit_arch(build(pe_mode='gap')
                                              .state_dict(), prefix=''))
    assert 'pe_at_input=True' in text
    assert 'hierarchical_pe' not in text and 'last_ln_pe' not in text
    text = format_backbone_cfg(infer_vit_arch(
        build(pe_mode='mpvg', layerwise_pe=False).state_dict(), prefix=''))
    # Without a chain, pos_0 is the only PE LN'_last can normalise.
    assert 'last_ln_pe=0,' in text.split('\n')[0]
    assert 'any k' not in text and 'hierarchical_pe' not in text
    text = format_backbone_cfg(infer_vit_arch(
        build(pe_mode='lape').state_dict(), prefix=''))
    assert 'pe_at_input=False (pos_0 not added' in text


def test_classifier_prefix_and_head():
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=arch(), img_size=IMG,
                      patch_size=PATCH, pe_mode='mpvg', pe_first_block=True),
        head=dict(type='LinearClsHead', num_classes=7, in_channels=EMBED)))
    inferred = infer_vit_arch(model.state_dict())
    assert inferred == dict(
        embed_dims=EMBED, num_layers=3, feedforward_channels=FFN,
        qkv_bias=True, patch_size=PATCH, patch_resolution=(4, 4),
        img_size=IMG, in_channels=3, pe_mode='mpvg', layerwise_pe=True,
        pe_first_block=True, last_ln_pe=0, final_norm=True, num_classes=7)


def test_non_square_patch_and_grid():
    model = build(pe_mode='gap', patch_size=(8, 4), img_size=(32, 16))
    inferred = infer_vit_arch(model.state_dict(), prefix='')
    assert inferred['patch_size'] == (8, 4)
    assert inferred['img_size'] == (32, 16)  # a square 4x4 grid of patches
    rebuild_from_text(format_backbone_cfg(inferred)).load_state_dict(
        model.state_dict(), strict=True)

    model = build(pe_mode='gap', img_size=(32, 48))
    inferred = infer_vit_arch(model.state_dict(), prefix='')
    assert inferred['patch_resolution'] is None
    assert inferred['img_size'] is None
    text = format_backbone_cfg(inferred)
    assert 'img_size' not in text.split('\n')[0]
    assert '#   img_size (the stored PE is not a square token grid' in text


def test_rejects_keys_no_mpvgvit_has():
    state = build(pe_mode='mpvg').state_dict()
    del state['pe.norms.1.weight'], state['pe.norms.1.bias']
    with pytest.raises(ValueError, match=r'PE LayerNorms of blocks \[2\]; '
                       r'an MPVGViT with 3 blocks has them for blocks 0\.\.2 '
                       r'\(pe_first_block=True\) or 1\.\.2'):
        infer_vit_arch(state, prefix='')
    state = build(pe_mode='mpvg').state_dict()
    state['cls_token'] = torch.zeros(1, 1, EMBED)
    with pytest.raises(ValueError, match='pe.last_norm .* needs a GAP model'):
        infer_vit_arch(state, prefix='')
    state = build(pe_mode='mpvg').state_dict()
    del state['norm.weight'], state['norm.bias']
    with pytest.raises(ValueError, match=r'has no norm;'):
        infer_vit_arch(state, prefix='')


def test_arch_hint_names_deit_presets():
    """A DeiT-Ti-shaped checkpoint is announced as arch='deit-tiny'."""
    state = {'backbone.cls_token': torch.empty(1, 1, 192),
             'backbone.pe.pos_embed': torch.empty(1, 197, 192),
             'backbone.patch_embed.proj.weight': torch.empty(192, 3, 16, 16)}
    for name in ('weight', 'bias'):
        state[f'backbone.norm.{name}'] = torch.empty(192)
    for i in range(12):
        state[f'backbone.blocks.{i}.mlp.fc1.weight'] = torch.empty(768, 192)
        state[f'backbone.blocks.{i}.attn.qkv.bias'] = torch.empty(576)
    assert format_backbone_cfg(infer_vit_arch(state)).split('\n') == [
        "backbone=dict(type='MPVGViT', arch='deit-tiny', pe_mode='cls', "
        'img_size=224, patch_size=16)',
        '# Not stored in the weights (set them as trained if they differ):',
        "#   num_heads=3 (the deit-tiny preset's)",
        '#   norm_after_attn=False (the block layout: a ViT-Lite block, as '
        "in arch='vit-lite-7', has the same weights)",
        '#   pe_at_input=True (pos_0 added to the tokens before block 0)']
