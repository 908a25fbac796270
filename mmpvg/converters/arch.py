# Copyright (c) mmpvg contributors. All rights reserved.
"""What an MPVGViT state dict says about its architecture, as a config.

A state dict shows which parameters a model has, not how it uses them. It
shows the width, depth, MLP width, qkv bias, patch size, input channels,
stored token grid, class token, which blocks own a PE LayerNorm, whether
there is a Last-LN PE norm and a Last LN, and the head's classes. It does not
show the number of heads, the block layout (``norm_after_attn``), whether
pos_0 is added at the input (``pe_at_input``), whether the PE LayerNorms are
chained (``hierarchical_pe``) or which pos_k the Last-LN PE normalises (the
k of ``last_ln_pe``): models that differ only there have the very same keys
and shapes. :func:`format_backbone_cfg` writes the visible part as a config
and lists the rest with the values it assumes.
"""
from typing import List, Mapping, Optional

import torch

from mmpvg.utils.grid import pos_embed_grid
from .vit_keys import BLOCK_RE, MPVG_PE_NORM_RE

__all__ = ['infer_vit_arch', 'arch_preset', 'backbone_cfg',
           'not_in_weights', 'format_backbone_cfg']

# Shown where a custom arch needs the number of heads filled in.
NUM_HEADS_PLACEHOLDER = '<not stored in weights>'


def _indices(state_dict: Mapping, prefix: str, pattern) -> List[int]:
    return sorted({int(m.group(1)) for m in (
        pattern.match(k[len(prefix):]) for k in state_dict
        if k.startswith(prefix)) if m})


def infer_vit_arch(state_dict: Mapping[str, torch.Tensor],
                   prefix: str = 'backbone.') -> dict:
    """Read what an MPVGViT state dict says about its architecture.

    The PE structure is read from the PE keys:

    ============================  ==========================================
    keys                          inferred
    ============================  ==========================================
    cls_token                     ``pe_mode='cls'``
    cls_token, pe.norms.0..L-1    ``'lape'``
    cls_token, pe.norms.1..L-1    ``'lape'``, ``pe_first_block=False``
    (none of them)                ``'gap'``
    pe.last_norm                  ``'gap'``, ``last_ln_pe=0`` (Fig. 5b; the
                                  same model as ``'mpvg'`` with
                                  ``layerwise_pe=False``)
    pe.norms.1..L-1               ``'pvg'``
    pe.norms.0..L-1               ``'pvg'``, ``pe_first_block=True``
    pe.norms.1..L-1, last_norm    ``'mpvg'``
    pe.norms.0..L-1, last_norm    ``'mpvg'``, ``pe_first_block=True``
    ============================  ==========================================

    Not stored in a state dict, hence not inferred (the values of the
    inferred ``pe_mode`` are assumed, see :func:`format_backbone_cfg`):
    the number of heads, the block layout (``norm_after_attn``), no PE at
    the input (``pe_at_input=False``, e.g. the "no x+PE" ablation, or a
    LaPE-style chain without class token, which reads as
    ``'pvg'``/``'mpvg'`` with ``pe_first_block=True``), the non-hierarchical
    chain (``hierarchical_pe=False``), and the k of ``last_ln_pe`` (which
    pos_k LN'_last normalises; every k gives the same keys, 0 is assumed).
    A class-token backbone run without its class token
    (``with_cls_token=False``, dense outputs) reads as the GAP mode with
    the same PE LayerNorms.

    Args:
        state_dict (Mapping[str, Tensor]): An MPVGViT (classifier) state dict.
        prefix (str): Prefix of the backbone keys. Defaults to 'backbone.'.

    Returns:
        dict: ``embed_dims``, ``num_layers``, ``feedforward_channels``,
        ``qkv_bias``, ``patch_size``, ``patch_resolution`` (of the stored
        PE, None if not square), ``img_size`` (None if the grid is not
        square), ``in_channels``, ``pe_mode``, the switches
        ``layerwise_pe``, ``pe_first_block``, ``last_ln_pe`` (0 or None)
        and ``final_norm``, and ``num_classes`` (None without ``head.fc``).

    Raises:
        ValueError: If the PE keys are not those of any MPVGViT (PE
            LayerNorms on other blocks than 0..L-1 or 1..L-1, or a Last-LN
            PE norm with a class token or without the Last LN).
    """
    def get(name):
        return state_dict[prefix + name]

    weight = get('patch_embed.proj.weight')
    num_layers = len(_indices(state_dict, prefix, BLOCK_RE))
    with_cls = prefix + 'cls_token' in state_dict
    norms = _indices(state_dict, prefix, MPVG_PE_NORM_RE)
    last = any(k.startswith(prefix + 'pe.last_norm.') for k in state_dict)
    final_norm = prefix + 'norm.weight' in state_dict

    if norms and norms not in (list(range(num_layers)),
                               list(range(1, num_layers))):
        raise ValueError(
            f'{prefix}pe.norms.* are the PE LayerNorms of blocks {norms}; an '
            f'MPVGViT with {num_layers} blocks has them for blocks '
            f'0..{num_layers - 1} (pe_first_block=True) or 1..'
            f'{num_layers - 1}, or for none.')
    if last and (with_cls or not final_norm):
        raise ValueError(
            f'{prefix}pe.last_norm (the Last-LN PE of MPVG) needs a GAP model '
            'with the Last LN, but the checkpoint has '
            + (f'{prefix}cls_token' if with_cls else f'no {prefix}norm')
            + '; no MPVGViT has these keys.')
    layerwise = bool(norms)
    first_block = layerwise and norms[0] == 0
    if with_cls:
        pe_mode = 'lape' if layerwise else 'cls'
    elif layerwise:
        pe_mode = 'mpvg' if last else 'pvg'
    else:
        pe_mode = 'gap'  # with pe.last_norm: Fig. 5b, last_ln_pe=0

    grid = pos_embed_grid(get('pe.pos_embed').shape[1], int(with_cls))
    side = grid[1] if grid else None
    patch = tuple(weight.shape[2:])
    img_size = None
    if side:
        img_size = (side * patch[0] if patch[0] == patch[1] else
                    (side * patch[0], side * patch[1]))
    head = state_dict.get('head.fc.weight')
    return dict(
        embed_dims=weight.shape[0],
        num_layers=num_layers,
        feedforward_channels=get('blocks.0.mlp.fc1.weight').shape[0],
        qkv_bias=prefix + 'blocks.0.attn.qkv.bias' in state_dict,
        patch_size=patch[0] if patch[0] == patch[1] else patch,
        patch_resolution=(side, side) if side else None,
        img_size=img_size,
        in_channels=weight.shape[1],
        pe_mode=pe_mode,
        layerwise_pe=layerwise,
        pe_first_block=first_block,
        last_ln_pe=0 if last else None,
        final_norm=final_norm,
        num_classes=None if head is None else head.shape[0])


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


def _pe_mode_defaults(pe_mode: str) -> dict:
    from mmpvg.models import PE_MODES
    return PE_MODES[pe_mode]


def backbone_cfg(arch: dict, num_heads: Optional[int] = None) -> dict:
    """The MPVGViT config that loads the weights ``arch`` was read from.

    Every setting a state dict shows is in the result: the arch, ``pe_mode``
    and those ablation switches (``layerwise_pe``, ``pe_first_block``,
    ``last_ln_pe``) and ``final_norm`` whose values differ from what
    ``pe_mode`` and the defaults imply, the stored input size, the patch
    size and the input channels. What a state dict does not show is left
    to ``pe_mode``'s defaults (see :func:`infer_vit_arch`).

    Args:
        arch (dict): What :func:`infer_vit_arch` returned.
        num_heads (int, optional): The number of heads, which no state dict
            stores. ``None`` names a DeiT preset that matches (whose heads
            are then DeiT's), or gives a custom arch with
            ``num_heads=None`` to fill in.

    Returns:
        dict: The ``model.backbone`` config (``type='MPVGViT'``).
    """
    preset = arch_preset(arch)
    if preset is not None and num_heads in (None, _preset_heads(preset)):
        arch_cfg = preset
    else:
        arch_cfg = dict(embed_dims=arch['embed_dims'],
                        num_layers=arch['num_layers'], num_heads=num_heads,
                        feedforward_channels=arch['feedforward_channels'],
                        qkv_bias=arch['qkv_bias'])
    cfg = dict(type='MPVGViT', arch=arch_cfg, pe_mode=arch['pe_mode'])
    implied = _pe_mode_defaults(arch['pe_mode'])
    switches = ['layerwise_pe', 'last_ln_pe']
    if arch['layerwise_pe']:  # only then may pe_first_block be given
        switches.insert(1, 'pe_first_block')
    for name in switches:
        if arch[name] != implied[name]:
            cfg[name] = arch[name]
    if not arch.get('final_norm', True):
        cfg['final_norm'] = False
    if arch['img_size'] is not None:
        cfg['img_size'] = arch['img_size']
    cfg['patch_size'] = arch['patch_size']
    if arch['in_channels'] != 3:
        cfg['in_channels'] = arch['in_channels']
    return cfg


def _preset_heads(preset: str) -> int:
    from mmpvg.models import MPVGViT
    return MPVGViT.arch_zoo[preset]['num_heads']


def not_in_weights(arch: dict) -> List[str]:
    """The settings no state dict shows, with the values a config assumes.

    Args:
        arch (dict): What :func:`infer_vit_arch` returned.

    Returns:
        list[str]: One ``name=value (what it is)`` per setting that matters
        for this model and cannot be read from its weights; the value is
        the one that :func:`backbone_cfg`'s config builds with.
    """
    implied = _pe_mode_defaults(arch['pe_mode'])
    preset = arch_preset(arch)
    notes = []
    if preset is not None:
        notes.append(f'num_heads={_preset_heads(preset)} (the {preset} '
                     "preset's)")
    else:
        notes.append('num_heads (fill it in above)')
    notes.append('norm_after_attn=False (the block layout: a ViT-Lite '
                 "block, as in arch='vit-lite-7', has the same weights)")
    notes.append(f"pe_at_input={implied['pe_at_input']} (pos_0 "
                 f"{'added' if implied['pe_at_input'] else 'not added'} to "
                 'the tokens before block 0)')
    num_pe_norms = 0
    if arch['layerwise_pe']:
        num_pe_norms = arch['num_layers'] - (0 if arch['pe_first_block']
                                             else 1)
    if num_pe_norms > 1:
        notes.append('hierarchical_pe=True (each PE LayerNorm normalises '
                     "the previous block's PE, not pos_0)")
    if arch['last_ln_pe'] is not None and num_pe_norms > 0:
        notes.append(f"last_ln_pe={arch['last_ln_pe']} (LN'_last "
                     f"normalises pos_k; any k in [0, {num_pe_norms}] has "
                     'the same weights)')
    if arch['patch_resolution'] is None:
        notes.append('img_size (the stored PE is not a square token grid, '
                     'so its shape is ambiguous)')
    return notes


def format_backbone_cfg(arch: dict, extra: Optional[dict] = None) -> str:
    """The MPVGViT config that a converted checkpoint loads into, as text.

    Args:
        arch (dict): What :func:`infer_vit_arch` returned.
        extra (dict, optional): Further arguments the source model implies
            (e.g. ``out_type``), added to the config. Defaults to None.

    Returns:
        str: A ``backbone=dict(...)`` line (:func:`backbone_cfg`; a DeiT
        preset is named by its ``arch`` string, a custom arch shows
        ``num_heads`` as a placeholder to fill in), followed by comment
        lines that list what the weights do not show and the value the
        config assumes for it (:func:`not_in_weights`).
    """
    cfg = {**backbone_cfg(arch), **(extra or {})}
    parts = []
    for key, value in cfg.items():
        if key == 'arch' and isinstance(value, dict):
            value = 'dict(' + ', '.join(
                f'{k}={NUM_HEADS_PLACEHOLDER if v is None else repr(v)}'
                for k, v in value.items()) + ')'
        else:
            value = repr(value)
        parts.append(f'{key}={value}')
    lines = ['backbone=dict(' + ', '.join(parts) + ')',
             '# Not stored in the weights (set them as trained if they '
             'differ):']
    lines += [f'#   {note}' for note in not_in_weights(arch)]
    return '\n'.join(lines)
