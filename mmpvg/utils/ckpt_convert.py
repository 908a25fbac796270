# Copyright (c) mmpvg contributors. All rights reserved.
"""Convert checkpoints between timm/DeiT, LaPE and MPVGViT.

The conversions are pure functions on state dicts (``str -> Tensor``);
``tools/model_converters/*.py`` are thin command lines around them, and
:func:`load_checkpoint` / :func:`save_checkpoint` are the file I/O they share.

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
import argparse
import math
import os
import os.path as osp
import pickle
import re
import uuid
from collections import OrderedDict
from typing import (Any, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import torch
from mmpretrain.models.utils import resize_pos_embed

__all__ = [
    'unwrap_state_dict', 'convert_timm_to_mpvg', 'convert_mpvg_to_timm',
    'convert_lape_to_mpvg', 'convert_classifier_to_backbone',
    'infer_vit_arch', 'arch_preset', 'format_backbone_cfg',
    'load_checkpoint', 'check_output_path', 'save_checkpoint'
]

# Parameters of one block, named alike in timm, LaPE and MPVGViT.
BLOCK_PARAMS = (
    'norm1.weight', 'norm1.bias', 'attn.qkv.weight', 'attn.qkv.bias',
    'attn.proj.weight', 'attn.proj.bias', 'norm2.weight', 'norm2.bias',
    'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias')
OPTIONAL_BLOCK_PARAMS = ('attn.qkv.bias', )  # qkv_bias=False models
STEM_PARAMS = ('patch_embed.proj.weight', 'patch_embed.proj.bias')
NORM_PARAMS = ('norm.weight', 'norm.bias')
_BLOCK_RE = re.compile(r'^blocks\.(\d+)\.(.+)$')
_PE_NORM_RE = re.compile(r'^blocks\.(\d+)\.pe_norm\.(weight|bias)$')
_MPVG_PE_NORM_RE = re.compile(r'^pe\.norms\.(\d+)\.(weight|bias)$')

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


# ---------------------------------------------------------------------- #
# helpers
# ---------------------------------------------------------------------- #
def unwrap_state_dict(checkpoint: Mapping) -> Tuple[Dict[str, Any],
                                                    List[str]]:
    """Find the model's state dict inside a loaded checkpoint.

    Accepts a bare state dict, mmengine/timm checkpoints
    (``{'state_dict': ...}``) and DeiT/LaPE training checkpoints
    (``{'model': ...}``), and strips a ``module.`` prefix that every key
    carries (a model saved inside DistributedDataParallel).

    Args:
        checkpoint (Mapping): What ``torch.load`` returned.

    Returns:
        tuple[dict, list[str]]: The state dict, and the names of the other
        top-level entries of the checkpoint that it leaves out (such as
        ``optimizer`` or ``model_ema``; empty for a bare state dict).

    Raises:
        ValueError: If no state dict can be found.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(
            f'The checkpoint is a {type(checkpoint).__name__}, not a dict; '
            'expected a state dict or a dict with a "state_dict" or "model" '
            'entry.')
    ignored: List[str] = []
    state_dict = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), Mapping):
            state_dict = checkpoint[key]
            ignored = [k for k in checkpoint if k != key]
            break
    not_tensors = [k for k, v in state_dict.items()
                   if not isinstance(v, torch.Tensor)]
    if not state_dict or not_tensors:
        raise ValueError(
            'No state dict found in the checkpoint: expected a dict of '
            'tensors, or a dict with a "state_dict" or "model" entry holding '
            f'one; got top-level entries {sorted(map(str, checkpoint))[:10]}'
            + (f' (not tensors: {sorted(map(str, not_tensors))[:10]})'
               if not_tensors else '') + '.')
    if all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    return dict(state_dict), ignored


def _grid_of(rows: int, num_extra_tokens: int) -> Optional[int]:
    """Side of the square token grid of a PE with ``rows`` rows, or None."""
    side = math.isqrt(max(rows - num_extra_tokens, 0))
    if side > 0 and side * side == rows - num_extra_tokens:
        return side
    return None


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
        _BLOCK_RE.match(k[len(prefix):]) for k in state_dict
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
    if _grid_of(pos.shape[1], 1) is None:
        hint = ''
        if _grid_of(pos.shape[1], 0) is not None:
            hint = (' It has a square number of rows, i.e. no class-token '
                    'row (timm no_embed_class=True), while MPVGViT adds the '
                    'PE to the class token too.')
        elif _grid_of(pos.shape[1], 2) is not None:
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


def _convert_timm_like(state_dict: Mapping[str, torch.Tensor],
                       with_pe_norm: bool, what: str) -> 'OrderedDict':
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
        elif (_BLOCK_RE.match(key)
              and _BLOCK_RE.match(key).group(2) in BLOCK_PARAMS):
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


# ---------------------------------------------------------------------- #
# conversions
# ---------------------------------------------------------------------- #
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
        raise ValueError(_no_prefix_message(state_dict, prefix))
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
                (_BLOCK_RE.match(name)
                 and _BLOCK_RE.match(name).group(2) in BLOCK_PARAMS)):
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


def _no_prefix_message(state_dict: Mapping, prefix: str) -> str:
    heads = sorted({k.split('.')[0] + '.' if '.' in k else k
                    for k in state_dict})
    return (f'No key of the checkpoint starts with {prefix!r}; its keys start '
            f'with {heads[:10]}. Pass the prefix the backbone keys have '
            "(e.g. 'backbone.' for an mmpretrain classifier, '' for a bare "
            'backbone state dict).')


def convert_classifier_to_backbone(
        state_dict: Mapping[str, torch.Tensor],
        src_prefix: str = 'backbone.',
        dst_prefix: str = 'backbone.',
        patch_resolution: Optional[Union[int, Sequence[int]]] = None,
        img_size: Optional[Union[int, Sequence[int]]] = None,
        patch_size: Optional[Union[int, Sequence[int]]] = None,
        interpolate_mode: str = 'bicubic'
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Extract an MPVGViT backbone from a classifier, for detection/seg.

    Every key under ``src_prefix`` is moved under ``dst_prefix``; the
    position embedding ``pe.pos_embed`` is resized with mmpretrain's
    ``resize_pos_embed`` to the token grid of the downstream input (the
    class-token row, if any, is kept). Keys outside ``src_prefix`` (the
    classification head, ...) are returned as unused.

    Args:
        state_dict (Mapping[str, Tensor]): The classifier state dict.
        src_prefix (str): Prefix of the backbone keys in ``state_dict``.
            Defaults to 'backbone.'.
        dst_prefix (str): Prefix of the backbone keys in the result
            ('backbone.' for mmdet/mmseg models, '' for a bare backbone).
            Defaults to 'backbone.'.
        patch_resolution (int | Sequence[int], optional): Token grid (h, w)
            to resize the PE to. Excludes ``img_size``.
        img_size (int | Sequence[int], optional): Input size (h, w) the PE
            is resized for; the grid is ``ceil(img_size / patch_size)`` as in
            MPVGViT. Excludes ``patch_resolution``.
        patch_size (int | Sequence[int], optional): Patch size used with
            ``img_size``; defaults to the kernel of ``patch_embed.proj``.
        interpolate_mode (str): Interpolation of the PE. Defaults to
            'bicubic' (as MPVGViT).

    Returns:
        tuple[OrderedDict[str, Tensor], list[str]]: The backbone state dict
        and the keys of ``state_dict`` that were not used.

    Raises:
        ValueError: If no key starts with ``src_prefix``, both or neither
            form of the target grid is valid, or the PE is not a square
            grid (plus one class-token row with ``cls_token``).
    """
    if patch_resolution is not None and img_size is not None:
        raise ValueError('Give either patch_resolution or img_size, not '
                         'both.')
    if patch_size is not None and img_size is None:
        raise ValueError('patch_size is only used together with img_size.')
    used = [k for k in state_dict if k.startswith(src_prefix)]
    if not used:
        raise ValueError(_no_prefix_message(state_dict, src_prefix))
    unused = [k for k in state_dict if not k.startswith(src_prefix)]

    converted = OrderedDict(
        (dst_prefix + k[len(src_prefix):], state_dict[k]) for k in used)

    pos_key = dst_prefix + 'pe.pos_embed'
    if pos_key not in converted:
        raise ValueError(
            f'No {src_prefix}pe.pos_embed in the checkpoint: it is not an '
            'MPVGViT (keys under the prefix: '
            f'{sorted(k[len(src_prefix):] for k in used)[:8]}).')
    target = None
    if img_size is not None:
        if patch_size is None:
            weight = converted.get(dst_prefix + 'patch_embed.proj.weight')
            if weight is None or weight.ndim != 4:
                raise ValueError(
                    'patch_size is not given and cannot be read from '
                    f'{src_prefix}patch_embed.proj.weight.')
            patch_size = tuple(weight.shape[2:])
        img_hw, patch_hw = _pair(img_size), _pair(patch_size)
        target = tuple(math.ceil(i / p) for i, p in zip(img_hw, patch_hw))
    elif patch_resolution is not None:
        target = _pair(patch_resolution)
    if target is not None:
        if min(target) < 1:
            raise ValueError(f'Invalid token grid {target}.')
        pos = converted[pos_key]
        extra = int(dst_prefix + 'cls_token' in converted)
        side = _grid_of(pos.shape[1], extra) if pos.ndim == 3 else None
        if side is None:
            raise ValueError(
                f'{src_prefix}pe.pos_embed has shape {tuple(pos.shape)}: '
                f'expected (1, {extra} + h*w, C) with a square grid h = w '
                f"({'with' if extra else 'without'} a class-token row, as "
                f"the checkpoint {'has' if extra else 'has no'} cls_token).")
        converted[pos_key] = resize_pos_embed(
            pos, (side, side), target, mode=interpolate_mode,
            num_extra_tokens=extra)
    return converted, unused


def _pair(value) -> Tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return (value[0], value[0])
    if len(value) != 2:
        raise ValueError(f'Expected one or two sizes (h, w), got {value}.')
    return value


def infer_vit_arch(state_dict: Mapping[str, torch.Tensor],
                   prefix: str = 'backbone.') -> dict:
    """Read what an MPVGViT state dict says about its architecture.

    The number of heads and the block layout are not stored in weights and
    are not part of the result.

    Args:
        state_dict (Mapping[str, Tensor]): An MPVGViT (classifier) state dict.
        prefix (str): Prefix of the backbone keys. Defaults to 'backbone.'.

    Returns:
        dict: ``embed_dims``, ``num_layers``, ``feedforward_channels``,
        ``qkv_bias``, ``patch_size``, ``patch_resolution`` (of the stored
        PE, None if not square), ``img_size``, ``in_channels``,
        ``pe_mode`` (best guess from the PE keys) and ``num_classes`` (None
        without ``head.fc``).
    """
    def get(name):
        return state_dict[prefix + name]

    weight = get('patch_embed.proj.weight')
    num_layers = len({int(m.group(1)) for m in (
        _BLOCK_RE.match(k[len(prefix):]) for k in state_dict
        if k.startswith(prefix)) if m})
    with_cls = prefix + 'cls_token' in state_dict
    norms = {int(m.group(1)) for m in (
        _MPVG_PE_NORM_RE.match(k[len(prefix):]) for k in state_dict
        if k.startswith(prefix)) if m}
    last = any(k.startswith(prefix + 'pe.last_norm.') for k in state_dict)
    if with_cls:
        pe_mode = 'lape' if norms else 'cls'
    else:
        pe_mode = 'mpvg' if last else ('pvg' if norms else 'gap')
    side = _grid_of(get('pe.pos_embed').shape[1], int(with_cls))
    patch = tuple(weight.shape[2:])
    head = state_dict.get('head.fc.weight')
    return dict(
        embed_dims=weight.shape[0],
        num_layers=num_layers,
        feedforward_channels=get('blocks.0.mlp.fc1.weight').shape[0],
        qkv_bias=prefix + 'blocks.0.attn.qkv.bias' in state_dict,
        patch_size=patch[0] if patch[0] == patch[1] else patch,
        patch_resolution=(side, side) if side else None,
        img_size=side * patch[0] if side and patch[0] == patch[1] else None,
        in_channels=weight.shape[1],
        pe_mode=pe_mode,
        num_classes=None if head is None else head.shape[0])


# ---------------------------------------------------------------------- #
# file I/O shared by the command lines
# ---------------------------------------------------------------------- #
def load_checkpoint(path: str) -> Any:
    """``torch.load`` a checkpoint on the CPU with ``weights_only=True``.

    Besides tensors and the mmengine types that ``import mmpvg``
    allowlists, ``argparse.Namespace`` is allowed while loading: DeiT and
    LaPE training checkpoints store their command line as one (``args``).
    Nothing else that pickle could execute is.

    Args:
        path (str): The checkpoint file.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: If ``path`` is not a file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint file {path!r} does not exist.')
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f'Could not load {path!r} with torch.load(weights_only=True): it '
            'holds objects other than tensors and the allowlisted types, and '
            'this tool does not unpickle arbitrary objects. torch said: '
            f'{e}') from e


def check_output_path(path: str, force: bool = False,
                      src: Optional[str] = None) -> None:
    """Refuse an output path whose file would be lost by writing it.

    Args:
        path (str): The output file.
        force (bool): Allow replacing an existing file. Defaults to False.
        src (str, optional): The input file, which is never replaced (not
            even with ``force``).

    Raises:
        FileExistsError: If ``path`` exists and ``force`` is False, or
            ``path`` is ``src``.
        IsADirectoryError: If ``path`` is a directory.
    """
    if src is not None and osp.exists(path) and osp.exists(src) \
            and osp.samefile(src, path):
        raise FileExistsError(
            f'Output {path!r} is the source checkpoint; write the converted '
            'weights to another file.')
    if osp.isdir(path):
        raise IsADirectoryError(
            f'Output {path!r} is a directory; give the path of a file.')
    if osp.lexists(path) and not force:
        raise FileExistsError(
            f'Output file {path!r} already exists; it was left unchanged. '
            'Choose another path, or pass --force to replace it.')


def save_checkpoint(checkpoint: Any, path: str, force: bool = False) -> None:
    """Save with ``torch.save``, never overwriting a file unless ``force``.

    The parent directory is created. The data go to a temporary file in the
    same directory that is then renamed onto ``path``, so an interrupted
    save never leaves a truncated file, nor destroys the file that
    ``force`` replaces.

    Args:
        checkpoint (Any): What to save.
        path (str): The output file.
        force (bool): Replace an existing file. Defaults to False.

    Raises:
        FileExistsError: If ``path`` exists and ``force`` is False.
        IsADirectoryError: If ``path`` is a directory.
    """
    check_output_path(path, force=force)
    out_dir = osp.dirname(osp.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would outlive the rename; O_EXCL
    # with mode 0666 gives the usual permissions (minus the umask).
    tmp = osp.join(out_dir,
                   f'.{osp.basename(path)}.{uuid.uuid4().hex[:12]}.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(checkpoint, f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def arch_preset(arch: dict) -> Optional[str]:
    """The MPVGViT DeiT preset an inferred arch matches, if any.

    Args:
        arch (dict): What :func:`infer_vit_arch` returned.

    Returns:
        str | None: 'deit-tiny', 'deit-small' or 'deit-base' when width,
        depth, MLP width and qkv bias all match, else None. Its
        ``num_heads`` (3, 6, 12) is then DeiT's.
    """
    from mmpvg.models import MPVGViT
    for name in ('deit-tiny', 'deit-small', 'deit-base'):
        setting = MPVGViT.arch_zoo[name]
        if (setting['embed_dims'] == arch['embed_dims']
                and setting['num_layers'] == arch['num_layers']
                and setting['feedforward_channels']
                == arch['feedforward_channels'] and arch['qkv_bias']):
            return name
    return None


def format_backbone_cfg(arch: dict) -> str:
    """The MPVGViT config that a converted checkpoint loads into.

    Args:
        arch (dict): What :func:`infer_vit_arch` returned.

    Returns:
        str: A ``backbone=dict(...)`` line; a DeiT preset is named by its
        ``arch`` string. ``num_heads`` is not stored in weights, so a custom
        arch shows it as a placeholder to fill in.
    """
    preset = arch_preset(arch)
    if preset is not None:
        arch_str = repr(preset)
    else:
        arch_str = (f"dict(embed_dims={arch['embed_dims']}, "
                    f"num_layers={arch['num_layers']}, num_heads=<not "
                    f"stored in weights>, feedforward_channels="
                    f"{arch['feedforward_channels']}, "
                    f"qkv_bias={arch['qkv_bias']})")
    parts = ["type='MPVGViT'", f'arch={arch_str}',
             f"pe_mode={arch['pe_mode']!r}"]
    if arch['img_size'] is not None:
        parts.append(f"img_size={arch['img_size']}")
    parts.append(f"patch_size={arch['patch_size']}")
    if arch['in_channels'] != 3:
        parts.append(f"in_channels={arch['in_channels']}")
    return 'backbone=dict(' + ', '.join(parts) + ')'


def print_conversion(src: str, direction: str, converted: Mapping,
                     ignored: List[str], detail: str = '',
                     notes: Tuple[str, ...] = ()) -> None:
    """Print what a converter wrote, the same way for every converter.

    Args:
        src (str): The source checkpoint file.
        direction (str): What was converted into what.
        converted (Mapping): The converted state dict.
        ignored (list): Checkpoint entries besides the state dict that were
            not converted (see :func:`unwrap_state_dict`).
        detail (str): Appended to the tensor/parameter count.
        notes (tuple[str]): Further lines, printed before ``ignored``.
    """
    num_params = sum(v.numel() for v in converted.values())
    print(f'Converted {src} ({direction})')
    print(f'  {len(converted)} tensors, {num_params:,} parameters{detail}')
    for note in notes:
        print(f'  {note}')
    if ignored:
        print('  not converted (other checkpoint entries): '
              + ', '.join(map(str, ignored)))


def print_classifier_cfg(arch: dict) -> None:
    """Print the backbone (and head) config that loads converted weights."""
    print(f'  config: {format_backbone_cfg(arch)}')
    if arch.get('num_classes') is not None:
        print("  head=dict(type='LinearClsHead', "
              f"num_classes={arch['num_classes']}, "
              f"in_channels={arch['embed_dims']})")


def run_cli(parse_args, convert, argv=None) -> None:
    """The entry point that every tools/model_converters script shares.

    A conversion error ends the process with status 1 and a one-line
    ``prog: error: ...`` message instead of a traceback.
    """
    parser, args = parse_args(argv)
    try:
        convert(args)
    except (ValueError, OSError, pickle.UnpicklingError) as e:
        parser.exit(1, f'{parser.prog}: error: {e}\n')
