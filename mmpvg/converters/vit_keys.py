# Copyright (c) mmpvg contributors. All rights reserved.
"""State-dict key mappings between timm/DeiT, LaPE and MPVGViT.

MPVGViT keeps DeiT's parameter names inside each block, so the conversions
only move keys between prefixes; what they mostly do is refuse checkpoints
whose model computes something else (a distilled DeiT, a GAP model, register
tokens, LayerScale, ...), because such a checkpoint would load with renamed
keys and silently give a different network.

Names on each side:

- timm/DeiT ``VisionTransformer``: ``cls_token``, ``pos_embed``,
  ``patch_embed.proj``, ``blocks.{i}.{norm1, attn.qkv, attn.proj, norm2,
  mlp.fc1, mlp.fc2}``, ``norm``, ``head``.
- LaPE (a DeiT fork): timm's names plus ``blocks.{i}.pe_norm``.
- mmpretrain ``ImageClassifier`` with ``MPVGViT``: ``backbone.cls_token``,
  ``backbone.pe.pos_embed``, ``backbone.pe.norms.{i}`` (LaPE's
  ``pe_norm``), ``backbone.patch_embed.proj``, ``backbone.blocks.{i}.*``,
  ``backbone.norm``, ``head.fc``.
"""
import re
from collections import OrderedDict
from typing import Mapping

import torch

from mmpvg.utils.grid import pos_embed_grid

__all__ = ['convert_timm_to_mpvg', 'convert_lape_to_mpvg',
           'convert_mpvg_to_timm']

# Parameters of one block, named alike in timm, LaPE and MPVGViT.
BLOCK_PARAMS = (
    'norm1.weight', 'norm1.bias', 'attn.qkv.weight', 'attn.qkv.bias',
    'attn.proj.weight', 'attn.proj.bias', 'norm2.weight', 'norm2.bias',
    'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias')
OPTIONAL_BLOCK_PARAMS = ('attn.qkv.bias', )  # qkv_bias=False models
STEM_PARAMS = ('patch_embed.proj.weight', 'patch_embed.proj.bias')
NORM_PARAMS = ('norm.weight', 'norm.bias')
BLOCK_RE = re.compile(r'^blocks\.(\d+)\.(.+)$')
_PE_NORM_RE = re.compile(r'^blocks\.(\d+)\.pe_norm\.(weight|bias)$')
MPVG_PE_NORM_RE = re.compile(r'^pe\.norms\.(\d+)\.(weight|bias)$')

ACCEPTED_TIMM = (
    'Accepted: a timm/DeiT VisionTransformer with a class token and '
    "global_pool='token' (keys cls_token, pos_embed with 1 + h*w rows, "
    'patch_embed.proj, blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,'
    'mlp.fc2}, norm and optionally head), e.g. deit_{tiny,small,base}_'
    'patch16_224.')
ACCEPTED_LAPE = (
    'Accepted: an official LaPE checkpoint, i.e. the timm/DeiT names (class '
    'token, token pooling) plus blocks.{i}.pe_norm in every block.')

# Keys of timm/DeiT variants that MPVGViT does not compute, and why.
_UNSUPPORTED_TIMM = (
    (re.compile(r'^(dist_token|head_dist\.)'),
     'this is a distilled DeiT checkpoint (dist_token / head_dist): the '
     'distillation token and its head have no counterpart in MPVGViT; '
     'convert the non-distilled DeiT (deit_*_patch16_224) instead'),
    (re.compile(r'^fc_norm\.'),
     "this is a GAP timm model (fc_norm: global_pool='avg' with LayerNorm "
     'after pooling); MPVGViT normalises each token before pooling, so the '
     'weights do not transfer exactly'),
    (re.compile(r'^reg_token'),
     'the model has register tokens (reg_token), which MPVGViT has not'),
    (re.compile(r'^norm_pre\.'),
     'the model has a LayerNorm before the blocks (norm_pre, CLIP-style '
     'pre_norm=True), which MPVGViT has not'),
    (re.compile(r'^blocks\.\d+\.ls[12]\.'),
     'the blocks have LayerScale (ls1/ls2, e.g. DeiT III), which MPVGViT '
     'has not'),
    (re.compile(r'^blocks\.\d+\.attn\.(q_norm|k_norm|norm)\.'),
     'the attention has q/k normalisation (qk_norm), which MPVGViT has not'),
    (re.compile(r'^blocks\.\d+\.(norm|norm1|norm2)\.(?!weight$|bias$)'),
     'the block norms are not plain LayerNorms'),
    (re.compile(r'^attn_pool\.'),
     "the model pools with attention (global_pool='map'), not with the "
     'class token'),
    (re.compile(r'^pre_logits\.'),
     'the model has a pre-logits layer (representation_size), which '
     "mmpretrain's LinearClsHead has not"),
    (re.compile(r'^patch_embed\.norm\.'),
     'the patch embedding is followed by a norm (embed_norm_layer), which '
     'MPVGViT has not'),
    (re.compile(r'^blocks\.\d+\.pe_norm\.'),
     'this is a LaPE checkpoint (blocks.{i}.pe_norm); convert it with '
     'tools/model_converters/lape2mpvg.py (MPVGViT pe_mode=\'lape\')'),
)


def _check_vit(state_dict: Mapping[str, torch.Tensor], prefix: str,
               pos_key: str, what: str) -> int:
    """Check that a (prefixed) ViT state dict is complete and consistent.

    Returns the number of blocks.
    """
    def has(name):
        return prefix + name in state_dict

    required = ['cls_token', pos_key, *STEM_PARAMS, *NORM_PARAMS]
    missing = [prefix + k for k in required if not has(k)]
    if not has('cls_token'):
        raise ValueError(
            f'The {what} checkpoint has no {prefix}cls_token: it is not a '
            'class-token ViT (a GAP model, or timm class_token=False), which '
            'this converter does not handle; it converts class-token models '
            "only (MPVGViT pe_mode 'cls' / 'lape').")
    blocks = sorted({int(m.group(1)) for m in (
        BLOCK_RE.match(k[len(prefix):]) for k in state_dict
        if k.startswith(prefix)) if m})
    if blocks != list(range(len(blocks))):
        raise ValueError(
            f'The {what} checkpoint has blocks {blocks}; expected '
            'consecutive blocks numbered from 0.')
    if not blocks:
        missing.append(f'{prefix}blocks.*')
    qkv_bias = has('blocks.0.attn.qkv.bias')
    for i in blocks:
        for name in BLOCK_PARAMS:
            if name in OPTIONAL_BLOCK_PARAMS and not qkv_bias:
                continue
            if not has(f'blocks.{i}.{name}'):
                missing.append(f'{prefix}blocks.{i}.{name}')
    if missing:
        raise ValueError(
            f'The {what} checkpoint lacks {len(missing)} required key(s): '
            f'{missing[:12]}' + (' ...' if len(missing) > 12 else '') + '.')
    if not qkv_bias and any(has(f'blocks.{i}.attn.qkv.bias') for i in blocks):
        raise ValueError(
            f'The {what} checkpoint has attn.qkv.bias in some blocks only; '
            'MPVGViT uses one qkv_bias setting for all blocks.')

    dims = state_dict[prefix + 'patch_embed.proj.weight'].shape[0]
    cls_token = state_dict[prefix + 'cls_token']
    pos = state_dict[prefix + pos_key]
    if tuple(cls_token.shape) != (1, 1, dims):
        raise ValueError(
            f'{prefix}cls_token has shape {tuple(cls_token.shape)}, expected '
            f'(1, 1, {dims}).')
    if pos.ndim != 3 or pos.shape[0] != 1 or pos.shape[2] != dims:
        raise ValueError(
            f'{prefix}{pos_key} has shape {tuple(pos.shape)}, expected '
            f'(1, 1 + h*w, {dims}).')
    if pos_embed_grid(pos.shape[1], 1) is None:
        hint = ''
        if pos_embed_grid(pos.shape[1], 0) is not None:
            hint = (' It has a square number of rows, i.e. no class-token '
                    'row (timm no_embed_class=True), while MPVGViT adds the '
                    'PE to the class token too.')
        elif pos_embed_grid(pos.shape[1], 2) is not None:
            hint = ' 2 + a square looks like a distilled DeiT.'
        raise ValueError(
            f'{prefix}{pos_key} has {pos.shape[1]} rows; expected one '
            f'class-token row plus a square token grid.{hint}')
    return len(blocks)


def _reject_unsupported_timm(state_dict: Mapping[str, torch.Tensor],
                             allow_pe_norm: bool = False):
    accepted = ACCEPTED_LAPE if allow_pe_norm else ACCEPTED_TIMM
    for pattern, why in _UNSUPPORTED_TIMM:
        if allow_pe_norm and pattern.pattern.endswith(r'pe_norm\.'):
            continue
        found = sorted(k for k in state_dict if pattern.match(k))
        if found:
            raise ValueError(
                f'Cannot convert: {why} (found {found[:4]}'
                + (' ...' if len(found) > 4 else '') + f'). {accepted}')


def _reject_other_format(state_dict: Mapping[str, torch.Tensor],
                         what: str):
    """An mmpretrain/mmseg/mmpvg file has ``[backbone.]cls_token`` too:
    name what it is and its converter, not a missing key."""
    from .formats import describe_format, detect_format
    fmt = detect_format(state_dict)
    if fmt == 'mmpvg':
        raise ValueError(
            f'Cannot convert: this is not a {what} checkpoint but already an '
            'mmpvg one (it has MPVGViT keys such as pe.pos_embed): nothing '
            'to convert.')
    if fmt in ('mmpretrain', 'mmseg'):
        raise ValueError(f'Cannot convert: this is not a {what} checkpoint. '
                         + describe_format(fmt))


def _convert_timm_like(state_dict: Mapping[str, torch.Tensor],
                       with_pe_norm: bool, what: str) -> 'OrderedDict':
    _reject_other_format(state_dict, what)
    _reject_unsupported_timm(state_dict, allow_pe_norm=with_pe_norm)
    num_blocks = _check_vit(state_dict, '', 'pos_embed', what)

    converted = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        if key == 'pos_embed':
            new_key = 'backbone.pe.pos_embed'
        elif key == 'cls_token' or key in STEM_PARAMS or key in NORM_PARAMS:
            new_key = 'backbone.' + key
        elif key in ('head.weight', 'head.bias'):
            new_key = 'head.fc.' + key.split('.')[-1]
        elif _PE_NORM_RE.match(key) and with_pe_norm:
            block, param = _PE_NORM_RE.match(key).groups()
            new_key = f'backbone.pe.norms.{block}.{param}'
        elif (BLOCK_RE.match(key)
              and BLOCK_RE.match(key).group(2) in BLOCK_PARAMS):
            new_key = 'backbone.' + key
        else:
            unknown.append(key)
            continue
        converted[new_key] = value
    if unknown:
        raise ValueError(
            f'Cannot convert: the {what} checkpoint has keys this converter '
            f'does not know: {sorted(unknown)[:12]}'
            + (' ...' if len(unknown) > 12 else '') + '. '
            + (ACCEPTED_LAPE if with_pe_norm else ACCEPTED_TIMM))
    if ('head.weight' in state_dict) != ('head.bias' in state_dict):
        raise ValueError('The checkpoint has only one of head.weight and '
                         'head.bias; a linear head needs both.')
    if with_pe_norm:
        missing = [f'blocks.{i}.pe_norm.{p}' for i in range(num_blocks)
                   for p in ('weight', 'bias')
                   if f'blocks.{i}.pe_norm.{p}' not in state_dict]
        if missing:
            raise ValueError(
                f'The {what} checkpoint lacks {missing[:8]}: LaPE gives every '
                'block its own PE LayerNorm (blocks.{i}.pe_norm).'
                + (' It has no pe_norm at all, so it looks like a plain '
                   'DeiT/timm checkpoint; convert it with '
                   'tools/model_converters/deit2mpvg.py.'
                   if len(missing) == 2 * num_blocks else ''))
    return converted


def convert_timm_to_mpvg(state_dict: Mapping[str, torch.Tensor]
                         ) -> 'OrderedDict[str, torch.Tensor]':
    """Convert a timm/DeiT ViT to an MPVGViT ``pe_mode='cls'`` classifier.

    The result is the state dict of an mmpretrain ``ImageClassifier`` with
    ``backbone=dict(type='MPVGViT', pe_mode='cls', ...)`` and a
    ``LinearClsHead``: ``pos_embed`` becomes ``backbone.pe.pos_embed``, the
    other backbone keys get the prefix ``backbone.`` and ``head`` becomes
    ``head.fc``. A checkpoint without ``head`` (``num_classes=0``) gives a
    state dict without ``head.fc``.

    The block layout (pre-norm, ``norm_after_attn=False``) and the number of
    heads are not stored in a state dict; the MPVGViT config must match the
    timm model's (see :func:`infer_vit_arch` for what can be read back).

    Args:
        state_dict (Mapping[str, Tensor]): The timm ``VisionTransformer``
            state dict (see :func:`unwrap_state_dict` for checkpoints).

    Returns:
        OrderedDict[str, Tensor]: The MPVGViT classifier state dict; the
        tensors are shared with the input, not copied.

    Raises:
        ValueError: If the checkpoint is not a class-token, token-pooled
            ViT with the plain DeiT block (distilled DeiT, GAP / fc_norm,
            register tokens, LayerScale, LaPE, missing keys, ...).
    """
    return _convert_timm_like(state_dict, with_pe_norm=False, what='timm')


def convert_lape_to_mpvg(state_dict: Mapping[str, torch.Tensor]
                         ) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an official LaPE checkpoint to an MPVGViT 'lape' classifier.

    LaPE's DeiT fork adds no PE at the input and gives each block ``i`` a
    ``pe_norm`` LayerNorm chained as ``pos = blocks[i].pe_norm(pos)``, the
    block attending over ``norm1(x) + pos``. That is MPVGViT with
    ``pe_mode='lape'``, whose PE LayerNorm of block ``i`` is
    ``backbone.pe.norms.{i}``; everything else is renamed as in
    :func:`convert_timm_to_mpvg`.

    Args:
        state_dict (Mapping[str, Tensor]): The LaPE model's state dict
            (timm names plus ``blocks.{i}.pe_norm.{weight,bias}``).

    Returns:
        OrderedDict[str, Tensor]: The state dict of an mmpretrain
        ``ImageClassifier`` with ``MPVGViT(pe_mode='lape')`` and a
        ``LinearClsHead``.

    Raises:
        ValueError: If a block has no ``pe_norm``, or for any reason
            :func:`convert_timm_to_mpvg` would refuse the checkpoint.
    """
    return _convert_timm_like(state_dict, with_pe_norm=True, what='LaPE')


def convert_mpvg_to_timm(state_dict: Mapping[str, torch.Tensor],
                         prefix: str = 'backbone.'
                         ) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an MPVGViT ``pe_mode='cls'`` classifier to timm/DeiT names.

    The inverse of :func:`convert_timm_to_mpvg`: the result loads into
    timm's ``VisionTransformer(class_token=True, global_pool='token')``
    with LayerNorm eps 1e-6 and the same width, depth, heads and MLP ratio.
    Only the class-token model converts: the layer-wise PE LayerNorms of
    'lape', 'pvg' and 'mpvg' and the GAP models have no timm counterpart.
    A MPVGViT with the ViT-Lite block (``norm_after_attn``) cannot be told
    apart from its weights and must not be converted.

    Args:
        state_dict (Mapping[str, Tensor]): An mmpretrain ``ImageClassifier``
            state dict (backbone keys under ``prefix``, head ``head.fc``).
        prefix (str): Prefix of the backbone keys. Defaults to 'backbone.'.

    Returns:
        OrderedDict[str, Tensor]: The timm state dict (``head`` only if the
        classifier has ``head.fc``).

    Raises:
        ValueError: If the model is not a complete 'cls' MPVGViT, or has
            keys other than its backbone and ``head.fc``.
    """
    layerwise = sorted(k for k in state_dict
                       if k.startswith((prefix + 'pe.norms.',
                                        prefix + 'pe.last_norm.')))
    if layerwise:
        raise ValueError(
            f'Cannot convert to timm: the model has layer-wise PE '
            f'LayerNorms ({layerwise[:4]}), i.e. pe_mode \'lape\', \'pvg\' or '
            "'mpvg'; timm's VisionTransformer adds the PE once at the input. "
            "Only MPVGViT pe_mode='cls' converts to timm.")
    if not any(k.startswith(prefix) for k in state_dict):
        raise ValueError(no_prefix_message(state_dict, prefix))
    if prefix + 'cls_token' not in state_dict:
        raise ValueError(
            f'Cannot convert to timm: the model has no {prefix}cls_token, so '
            "it is a GAP model (pe_mode 'gap', 'pvg' or 'mpvg'); MPVGViT "
            "normalises tokens before pooling while timm's GAP uses fc_norm "
            "after pooling. Only MPVGViT pe_mode='cls' converts to timm.")
    _check_vit(state_dict, prefix, 'pe.pos_embed', 'MPVGViT')

    converted = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        name = key[len(prefix):] if key.startswith(prefix) else None
        if name == 'pe.pos_embed':
            new_key = 'pos_embed'
        elif name is not None and (
                name == 'cls_token' or name in STEM_PARAMS
                or name in NORM_PARAMS or
                (BLOCK_RE.match(name)
                 and BLOCK_RE.match(name).group(2) in BLOCK_PARAMS)):
            new_key = name
        elif key in ('head.fc.weight', 'head.fc.bias'):
            new_key = 'head.' + key.split('.')[-1]
        else:
            unknown.append(key)
            continue
        converted[new_key] = value
    if unknown:
        raise ValueError(
            f'Cannot convert to timm: keys {sorted(unknown)[:12]} are neither '
            f"MPVGViT 'cls' backbone keys (under {prefix!r}) nor a "
            'LinearClsHead (head.fc.weight, head.fc.bias).')
    return converted


def no_prefix_message(state_dict: Mapping, prefix: str) -> str:
    heads = sorted({k.split('.')[0] + '.' if '.' in k else k
                    for k in state_dict})
    return (f'No key of the checkpoint starts with {prefix!r}; its keys start '
            f'with {heads[:10]}. Pass the prefix the backbone keys have '
            "(e.g. 'backbone.' for an mmpretrain classifier, '' for a bare "
            'backbone state dict).')
