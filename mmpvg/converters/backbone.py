# Copyright (c) mmpvg contributors. All rights reserved.
"""Classifier -> detection/segmentation backbone: re-prefix, resize the PE."""
from collections import OrderedDict
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.utils import resize_pos_embed

from mmpvg.utils.grid import as_pair, pos_embed_grid, token_grid
from .vit_keys import no_prefix_message

__all__ = ['convert_classifier_to_backbone']


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
        ValueError: If the state dict is of another format (timm, LaPE,
            mmpretrain, mmseg: the message names its converter), no key
            starts with ``src_prefix``, both or neither
            form of the target grid is valid, or the PE is not a square
            grid (plus one class-token row with ``cls_token``).
    """
    if patch_resolution is not None and img_size is not None:
        raise ValueError('Give either patch_resolution or img_size, not '
                         'both.')
    if patch_size is not None and img_size is None:
        raise ValueError('patch_size is only used together with img_size.')
    from .formats import describe_format, detect_format
    fmt = detect_format(state_dict)
    if fmt not in (None, 'mmpvg'):
        raise ValueError(
            'Cannot extract an MPVGViT backbone: this is not an mmpvg '
            f'checkpoint. {describe_format(fmt)} Then run this tool on the '
            'converted file.')
    used = [k for k in state_dict if k.startswith(src_prefix)]
    if not used:
        raise ValueError(no_prefix_message(state_dict, src_prefix))
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
        target = token_grid(img_size, patch_size)
    elif patch_resolution is not None:
        target = as_pair(patch_resolution, 'token-grid size')
    if target is not None:
        if min(target) < 1:
            raise ValueError(f'Invalid token grid {target}.')
        pos = converted[pos_key]
        extra = int(dst_prefix + 'cls_token' in converted)
        grid = pos_embed_grid(pos.shape[1], extra) if pos.ndim == 3 else None
        if grid is None:
            raise ValueError(
                f'{src_prefix}pe.pos_embed has shape {tuple(pos.shape)}: '
                f'expected (1, {extra} + h*w, C) with a square grid h = w '
                f"({'with' if extra else 'without'} a class-token row, as "
                f"the checkpoint {'has' if extra else 'has no'} cls_token).")
        side = grid[1]
        converted[pos_key] = resize_pos_embed(
            pos, (side, side), target, mode=interpolate_mode,
            num_extra_tokens=extra)
    return converted, unused
