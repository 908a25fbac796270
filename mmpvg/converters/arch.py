# Copyright (c) mmpvg contributors. All rights reserved.
"""What an MPVGViT state dict says about its architecture, as a config."""
from typing import Mapping, Optional

import torch

from mmpvg.utils.grid import pos_embed_grid
from .vit_keys import BLOCK_RE, MPVG_PE_NORM_RE

__all__ = ['infer_vit_arch', 'arch_preset', 'format_backbone_cfg']


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
        BLOCK_RE.match(k[len(prefix):]) for k in state_dict
        if k.startswith(prefix)) if m})
    with_cls = prefix + 'cls_token' in state_dict
    norms = {int(m.group(1)) for m in (
        MPVG_PE_NORM_RE.match(k[len(prefix):]) for k in state_dict
        if k.startswith(prefix)) if m}
    last = any(k.startswith(prefix + 'pe.last_norm.') for k in state_dict)
    if with_cls:
        pe_mode = 'lape' if norms else 'cls'
    else:
        pe_mode = 'mpvg' if last else ('pvg' if norms else 'gap')
    grid = pos_embed_grid(get('pe.pos_embed').shape[1], int(with_cls))
    side = grid[1] if grid else None
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
