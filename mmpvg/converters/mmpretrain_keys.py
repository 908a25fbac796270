# Copyright (c) mmpvg contributors. All rights reserved.
"""State-dict key mappings from mmpretrain's and mmseg's ViT to MPVGViT.

Both upstream ViTs compute the pre-norm block of DeiT, so every weight maps
one to one (or is a zero bias that MPVGViT has and they lack); what differs
is the names:

========================  ============================  ==================
mmpretrain                mmseg                         MPVGViT
========================  ============================  ==================
cls_token                 cls_token                     cls_token
pos_embed                 pos_embed                     pe.pos_embed
patch_embed.projection    patch_embed.projection        patch_embed.proj
layers.N.ln1              layers.N.ln1                  blocks.N.norm1
layers.N.attn.qkv         layers.N.attn.attn.in_proj    blocks.N.attn.qkv
layers.N.attn.proj        layers.N.attn.attn.out_proj   blocks.N.attn.proj
layers.N.ln2              layers.N.ln2                  blocks.N.norm2
layers.N.ffn.layers.0.0   layers.N.ffn.layers.0.0       blocks.N.mlp.fc1
layers.N.ffn.layers.1     layers.N.ffn.layers.1         blocks.N.mlp.fc2
ln1 (final norm)          ln1 (final_norm=True)         norm
ln2 (avg_featmap only)    --                            see below
========================  ============================  ==================

(mmseg's ``in_proj`` is ``in_proj_weight`` / ``in_proj_bias``.)

mmpretrain's ``out_type='avg_featmap'`` computes ``ln2(mean(ln1(x)))``: a
second LayerNorm *after* pooling. MPVGViT's ``avg_featmap`` is
``mean(norm(x))``, the same up to that ``ln2``, which has no place in the
backbone (a LayerNorm of the pooled vector is not a per-token operation).
It becomes the norm of an mmpretrain ``LinearNeck`` whose linear layer is
the identity, so the converted classifier gives mmpretrain's logits
exactly; or it is dropped on request (dense tasks never use it).

The keys are found under any prefix (``backbone.`` in an mmpretrain
``ImageClassifier`` or an mmseg ``EncoderDecoder``, none in a bare
backbone); the result always has MPVGViT's keys under ``backbone.``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional

import torch

from mmpvg.utils.grid import pos_embed_grid
from .vit_keys import BLOCK_PARAMS, BLOCK_RE

__all__ = ['find_vit_prefix', 'is_mmpretrain_vit', 'is_mmseg_vit',
           'inspect_mmpretrain_vit', 'convert_mmpretrain_to_mpvg',
           'AVG_NORM_CHOICES', 'avg_norm_neck_cfg']

_PROJ = 'patch_embed.projection.weight'
_LAYER_RE = re.compile(r'^layers\.(\d+)\.(.+)$')

# Block parameters: the upstream name (after ``layers.N.``) -> MPVGViT's
# (after ``blocks.N.``). mmpretrain's attention is its own
# MultiheadAttention (qkv, proj), mmseg's is mmcv's, which wraps
# nn.MultiheadAttention (in_proj packs q, k, v in the order of qkv).
_COMMON_BLOCK = {
    'ln1.weight': 'norm1.weight', 'ln1.bias': 'norm1.bias',
    'ln2.weight': 'norm2.weight', 'ln2.bias': 'norm2.bias',
    'ffn.layers.0.0.weight': 'mlp.fc1.weight',
    'ffn.layers.0.0.bias': 'mlp.fc1.bias',
    'ffn.layers.1.weight': 'mlp.fc2.weight',
    'ffn.layers.1.bias': 'mlp.fc2.bias',
}
_BLOCK_MAPS = {
    'mmpretrain': {**_COMMON_BLOCK,
                   'attn.qkv.weight': 'attn.qkv.weight',
                   'attn.qkv.bias': 'attn.qkv.bias',
                   'attn.proj.weight': 'attn.proj.weight',
                   'attn.proj.bias': 'attn.proj.bias'},
    'mmseg': {**_COMMON_BLOCK,
              'attn.attn.in_proj_weight': 'attn.qkv.weight',
              'attn.attn.in_proj_bias': 'attn.qkv.bias',
              'attn.attn.out_proj.weight': 'attn.proj.weight',
              'attn.attn.out_proj.bias': 'attn.proj.bias'},
}
_TOP = {'cls_token': 'cls_token', 'pos_embed': 'pe.pos_embed',
        'patch_embed.projection.weight': 'patch_embed.proj.weight',
        'patch_embed.projection.bias': 'patch_embed.proj.bias',
        'ln1.weight': 'norm.weight', 'ln1.bias': 'norm.bias'}
# Classifier heads (outside the backbone prefix) -> LinearClsHead.
_HEADS = {'head.fc.weight': 'head.fc.weight', 'head.fc.bias': 'head.fc.bias',
          'head.layers.head.weight': 'head.fc.weight',
          'head.layers.head.bias': 'head.fc.bias'}

ACCEPTED = (
    'Accepted: an mmpretrain VisionTransformer (bare, or the backbone of an '
    'ImageClassifier with LinearClsHead or VisionTransformerClsHead without '
    'hidden_dim; class token or not; out_type cls_token, featmap, raw or '
    'avg_featmap) or an mmseg VisionTransformer (bare, or the backbone of a '
    'segmentor), with the plain pre-norm block, 2 FFN layers and no '
    'pre_norm, patch_norm or layer scale.')

# Keys of upstream variants that MPVGViT does not compute, and why.
_UNSUPPORTED = (
    (re.compile(r'^(dist_token$|head\.layers\.head_dist\.)'),
     'this is a distilled DeiT (DistilledVisionTransformer: dist_token / '
     'head_dist), whose distillation token has no counterpart in MPVGViT; '
     'convert a non-distilled DeiT instead'),
    (re.compile(r'^(pre_norm|ln_pre)\.'),
     'the model has a LayerNorm before the blocks (pre_norm=True, '
     'CLIP-style), which MPVGViT has not'),
    (re.compile(r'^patch_embed\.norm\.'),
     'the patch embedding is followed by a norm (patch_norm=True / '
     'patch_cfg norm_cfg), which MPVGViT has not'),
    (re.compile(r'^layers\.\d+\.(attn\.gamma1|ffn\.gamma2|gamma_[12])'),
     'the blocks have layer scale (layer_scale_init_value > 0), which '
     'MPVGViT has not'),
    (re.compile(r'^head\.layers\.pre_logits\.'),
     'the head has a hidden layer (VisionTransformerClsHead hidden_dim), '
     "which mmpretrain's LinearClsHead has not"),
)

# What ``avg_norm`` may be (see convert_mmpretrain_to_mpvg).
AVG_NORM_CHOICES = ('neck', 'drop')


def find_vit_prefix(state_dict: Mapping) -> Optional[str]:
    """The prefix of an mmpretrain/mmseg ViT's keys in a state dict.

    Args:
        state_dict (Mapping): A state dict.

    Returns:
        str | None: The prefix (``'backbone.'``, ``''``, ...) before
        ``patch_embed.projection.weight`` and ``layers.0.ln1.weight``, or
        None if no (or more than one) such ViT is in the state dict.
    """
    prefixes = [k[:-len(_PROJ)] for k in map(str, state_dict)
                if k.endswith(_PROJ)
                and (k == _PROJ or k[:-len(_PROJ)].endswith('.'))]
    prefixes = [p for p in prefixes if p + 'layers.0.ln1.weight' in state_dict]
    return prefixes[0] if len(prefixes) == 1 else None


def _has(state_dict: Mapping, name: str) -> bool:
    prefix = find_vit_prefix(state_dict)
    return prefix is not None and prefix + name in state_dict


def is_mmpretrain_vit(state_dict: Mapping) -> bool:
    """Whether a state dict holds an mmpretrain ``VisionTransformer``
    (``layers.N.attn.qkv``), under any prefix."""
    return _has(state_dict, 'layers.0.attn.qkv.weight')


def is_mmseg_vit(state_dict: Mapping) -> bool:
    """Whether a state dict holds an mmseg ``VisionTransformer`` (mmcv's
    attention, ``layers.N.attn.attn.in_proj_weight``), under any prefix."""
    return _has(state_dict, 'layers.0.attn.attn.in_proj_weight')


def inspect_mmpretrain_vit(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """What an mmpretrain/mmseg ViT state dict is, before converting it.

    Args:
        state_dict (Mapping[str, Tensor]): The upstream state dict.

    Returns:
        dict: ``format`` ('mmpretrain' or 'mmseg'), ``prefix`` (of the
        backbone keys), ``with_cls_token``, ``avg_norm`` (mmpretrain's
        post-pooling ``ln2`` is present, i.e. ``out_type='avg_featmap'``),
        ``final_norm`` (``ln1`` present), ``patch_bias`` and ``proj_bias``
        (whether the patch embedding / attention output have biases; MPVGViT
        gets zeros where not), ``num_layers`` and ``embed_dims``.

    Raises:
        ValueError: If the state dict is not an mmpretrain or mmseg ViT.
    """
    prefix = find_vit_prefix(state_dict)
    if is_mmseg_vit(state_dict):
        fmt = 'mmseg'
    elif is_mmpretrain_vit(state_dict):
        fmt = 'mmpretrain'
    else:
        from .formats import describe_format, detect_format
        fmt = detect_format(state_dict)
        raise ValueError(
            'Not an mmpretrain or mmseg VisionTransformer: no '
            '[prefix.]patch_embed.projection.weight with layers.0.ln1 and '
            'layers.0.attn.qkv (mmpretrain) or layers.0.attn.attn.'
            'in_proj_weight (mmseg). '
            + ('It is already an mmpvg checkpoint: nothing to convert.'
               if fmt == 'mmpvg' else describe_format(fmt)))
    names = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
    layers = sorted({int(m.group(1)) for m in map(_LAYER_RE.match, names)
                     if m})
    proj = ('layers.0.attn.attn.out_proj.bias' if fmt == 'mmseg' else
            'layers.0.attn.proj.bias')
    return dict(
        format=fmt, prefix=prefix,
        with_cls_token=prefix + 'cls_token' in state_dict,
        avg_norm=fmt == 'mmpretrain' and prefix + 'ln2.weight' in state_dict,
        final_norm=prefix + 'ln1.weight' in state_dict,
        patch_bias=prefix + 'patch_embed.projection.bias' in state_dict,
        proj_bias=prefix + proj in state_dict,
        num_layers=len(layers),
        embed_dims=state_dict[prefix + _PROJ].shape[0])


def avg_norm_neck_cfg(embed_dims: int, eps: float = 1e-6) -> dict:
    """The neck that holds mmpretrain's post-pooling ``ln2``: an mmpretrain
    ``LinearNeck`` with an identity linear layer (set by the converter) and
    that LayerNorm (eps 1e-6, mmpretrain's default, unless given)."""
    return dict(type='LinearNeck', in_channels=embed_dims,
                out_channels=embed_dims,
                norm_cfg=dict(type='LN', eps=eps), act_cfg=None)


def _reject_unsupported(names: List[str]):
    for pattern, why in _UNSUPPORTED:
        found = sorted(n for n in names if pattern.match(n))
        if found:
            raise ValueError(f'Cannot convert: {why} (found {found[:4]}'
                             + (' ...' if len(found) > 4 else '')
                             + f'). {ACCEPTED}')


def _check_converted(out: Mapping[str, torch.Tensor], info: dict):
    """Complete, consecutive blocks and a PE of the right shape."""
    p = 'backbone.'
    blocks = sorted({int(m.group(1)) for m in (
        BLOCK_RE.match(k[len(p):]) for k in out if k.startswith(p)) if m})
    if blocks != list(range(len(blocks))) or not blocks:
        raise ValueError(
            f'The {info["format"]} checkpoint has layers {blocks}; expected '
            'consecutive layers numbered from 0.')
    qkv_bias = p + 'blocks.0.attn.qkv.bias' in out
    missing = [f'{p}{n}' for n in ('pe.pos_embed', 'patch_embed.proj.weight')
               if p + n not in out]
    for i in blocks:
        for name in BLOCK_PARAMS:
            if name == 'attn.qkv.bias' and not qkv_bias:
                continue
            if f'{p}blocks.{i}.{name}' not in out:
                missing.append(f'{p}blocks.{i}.{name}')
    if missing:
        raise ValueError(
            f'The {info["format"]} checkpoint lacks what {len(missing)} '
            f'MPVGViT key(s) need: {missing[:12]}'
            + (' ...' if len(missing) > 12 else '') + f'. {ACCEPTED}')
    dims = info['embed_dims']
    pos = out[p + 'pe.pos_embed']
    extra = int(info['with_cls_token'])
    if (pos.ndim != 3 or pos.shape[0] != 1 or pos.shape[2] != dims
            or pos_embed_grid(pos.shape[1], extra) is None):
        rows = ('one class-token row, as the checkpoint has cls_token'
                if extra else 'no class-token row, as the checkpoint has no '
                'cls_token')
        raise ValueError(
            f'{info["prefix"]}pos_embed has shape {tuple(pos.shape)}; '
            f'expected (1, {extra} + h*w, {dims}): a square token grid with '
            f'{rows}.')
    if extra and tuple(out[p + 'cls_token'].shape) != (1, 1, dims):
        raise ValueError(
            f'{info["prefix"]}cls_token has shape '
            f'{tuple(out[p + "cls_token"].shape)}, expected (1, 1, {dims}).')


def convert_mmpretrain_to_mpvg(state_dict: Mapping[str, torch.Tensor],
                               avg_norm: str = 'neck'
                               ) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an mmpretrain or mmseg ``VisionTransformer`` to MPVGViT.

    The backbone keys are renamed as in the module's table and put under
    ``backbone.``; a class token gives an MPVGViT ``pe_mode='cls'``, none a
    ``'gap'`` one. Biases MPVGViT has and the source lacks (mmseg's
    ``patch_bias=False`` default; ``qkv_bias=False`` in mmseg, which drops
    the attention's output bias too) become zeros, which computes the same.
    Outside the backbone:

    - mmpretrain: the head (``head.fc`` of ``LinearClsHead`` or
      ``head.layers.head`` of ``VisionTransformerClsHead``) becomes
      ``head.fc`` (a ``LinearClsHead``); any other key is refused.
    - mmseg: every other key (``decode_head``, ``auxiliary_head``,
      ``neck``) is kept unchanged: the same heads run on MPVGViT's
      ``featmap`` outputs.

    Args:
        state_dict (Mapping[str, Tensor]): The upstream state dict (see
            :func:`unwrap_state_dict` for checkpoints).
        avg_norm (str): What becomes of mmpretrain's post-pooling ``ln2``
            (``out_type='avg_featmap'``): 'neck' puts it in an mmpretrain
            ``LinearNeck`` (``neck.fc`` the identity, ``neck.norm`` the
            ``ln2``; config: :func:`avg_norm_neck_cfg`), so the classifier
            computes mmpretrain's output exactly; 'drop' leaves it out (the
            pooled features are then ``mean(ln1(x))``; dense outputs never
            used it). Defaults to 'neck'.

    Returns:
        OrderedDict[str, Tensor]: The MPVGViT classifier (or segmentor)
        state dict; tensors are shared with the input where not created.

    Raises:
        ValueError: If the state dict is not an mmpretrain/mmseg ViT, has
            parts MPVGViT does not compute (distillation token, pre_norm,
            patch_norm, layer scale, a hidden head layer), keys this
            converter does not know, missing keys or inconsistent shapes,
            or ``avg_norm`` is not one of :data:`AVG_NORM_CHOICES`.
    """
    if avg_norm not in AVG_NORM_CHOICES:
        raise ValueError(f'avg_norm={avg_norm!r}; choose from '
                         f'{AVG_NORM_CHOICES}.')
    info = inspect_mmpretrain_vit(state_dict)
    fmt, prefix = info['format'], info['prefix']
    block_map = _BLOCK_MAPS[fmt]
    inside = [k for k in state_dict if k.startswith(prefix)]
    outside = [k for k in state_dict if not k.startswith(prefix)]
    _reject_unsupported([k[len(prefix):] for k in inside]
                        + [k for k in outside if k.startswith('head.')])

    out: Dict[str, torch.Tensor] = OrderedDict()
    unknown = []
    for key in inside:
        name = key[len(prefix):]
        layer = _LAYER_RE.match(name)
        if name in _TOP:
            out['backbone.' + _TOP[name]] = state_dict[key]
        elif layer and layer.group(2) in block_map:
            out[f'backbone.blocks.{layer.group(1)}.'
                + block_map[layer.group(2)]] = state_dict[key]
        elif name in ('ln2.weight', 'ln2.bias') and fmt == 'mmpretrain':
            if avg_norm == 'neck':
                out['neck.norm.' + name.split('.')[1]] = state_dict[key]
        else:
            unknown.append(key)
    for key in outside:
        if fmt == 'mmseg':
            out[key] = state_dict[key]
        elif key in _HEADS:
            out[_HEADS[key]] = state_dict[key]
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(
            f'Cannot convert: the {fmt} checkpoint has keys this converter '
            f'does not know: {sorted(unknown)[:12]}'
            + (' ...' if len(unknown) > 12 else '') + f'. {ACCEPTED}')
    if ('head.fc.weight' in out) != ('head.fc.bias' in out):
        raise ValueError('The checkpoint has only one of the head weight and '
                         'bias; a linear head needs both.')

    # Zero biases where the source has none: the same computation.
    dims = info['embed_dims']
    ref = state_dict[prefix + _PROJ]
    if not info['patch_bias']:
        out['backbone.patch_embed.proj.bias'] = ref.new_zeros(dims)
    if not info['proj_bias']:
        for i in range(info['num_layers']):
            out[f'backbone.blocks.{i}.attn.proj.bias'] = ref.new_zeros(dims)
    if 'neck.norm.weight' in out:
        out['neck.fc.weight'] = torch.eye(dims, dtype=ref.dtype)
        out['neck.fc.bias'] = ref.new_zeros(dims)
    _check_converted(out, info)
    return OrderedDict(sorted(out.items(), key=lambda kv: _order(kv[0])))


def _order(key: str):
    """Backbone, neck, head, then the rest; blocks in numeric order."""
    rank = (0 if key.startswith('backbone.') else 1 if key.startswith(
        'neck.') else 2 if key.startswith('head.') else 3)
    parts = tuple((0, int(p), '') if p.isdigit() else (1, 0, p)
                  for p in key.split('.'))
    return rank, parts
