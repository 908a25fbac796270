# Copyright (c) mmpvg contributors. All rights reserved.
"""Which model a state dict comes from, and which converter makes it fit.

Used where a checkpoint does not fit the model it is loaded into, so that
the error can say what the file is and which tool converts it, and by the
converters to refuse a checkpoint of another format.

Formats recognised from the key names alone (``N`` a block index):

- ``'mmpvg'``: an mmpvg model (any family, any task), recognised by its PE
  component: ``[prefix.]pe.pos_embed``, ``pe.norms.N``, ``pe.last_norm``.
- ``'timm'``: timm/DeiT ``VisionTransformer``: unprefixed ``blocks.N.attn.
  qkv``, ``patch_embed.proj``, ``pos_embed`` / ``cls_token``.
- ``'lape'``: the official LaPE (a DeiT fork): timm's names plus
  ``blocks.N.pe_norm``.
- ``'mmpretrain'``: mmpretrain ``VisionTransformer`` (bare, or in an
  ``ImageClassifier`` under ``backbone.``): ``layers.N.ln1``,
  ``layers.N.attn.qkv``, ``patch_embed.projection``.
- ``'mmseg'``: mmseg ``VisionTransformer`` (bare, or in an
  ``EncoderDecoder`` under ``backbone.``): its attention is mmcv's
  ``MultiheadAttention``, ``layers.N.attn.attn.in_proj_weight``.
"""
import re
from typing import Iterable, Mapping, Optional

from .vit_keys import BLOCK_RE, STEM_PARAMS

__all__ = ['FORMATS', 'detect_format', 'converter_for', 'describe_format']

# Every format detect_format can return, with what it is, for messages.
FORMATS = {
    'mmpvg': 'an mmpvg checkpoint',
    'timm': 'a timm/DeiT VisionTransformer checkpoint',
    'lape': 'a LaPE (DeiT fork) checkpoint',
    'mmpretrain': 'an mmpretrain VisionTransformer checkpoint',
    'mmseg': 'an mmseg VisionTransformer checkpoint',
}

_CONVERTERS = {
    'timm': 'tools/model_converters/deit2mpvg.py',
    'lape': 'tools/model_converters/lape2mpvg.py',
    'mmpretrain': 'tools/model_converters/mmpretrain2mpvg.py',
    'mmseg': 'tools/model_converters/mmpretrain2mpvg.py',
}

# The PE component of every mmpvg family, under any prefix (backbone.,
# backbone.vit. in the ViT-Adapter, none in a bare backbone).
_MMPVG_PE_RE = re.compile(
    r'(^|\.)pe\.(pos_embed$|last_norm\.|norms\.\d+\.)')
_MMSEG_ATTN_RE = re.compile(r'(^|\.)layers\.\d+\.attn\.attn\.in_proj_')
_MMPRETRAIN_VIT_RE = re.compile(
    r'(^|\.)layers\.\d+\.(ln1\.|attn\.qkv\.|ffn\.layers\.)')
_PE_NORM_RE = re.compile(r'^blocks\.\d+\.pe_norm\.')


def _any(pattern, keys: Iterable[str]) -> bool:
    return any(pattern.search(k) for k in keys)


def detect_format(state_dict: Mapping) -> Optional[str]:
    """The format of a state dict, from its key names.

    Args:
        state_dict (Mapping): A state dict (see
            :func:`~mmpvg.converters.unwrap_state_dict` to get it out of a
            checkpoint; a ``module.`` prefix on every key is allowed).

    Returns:
        str | None: One of :data:`FORMATS` (``'mmpvg'``, ``'timm'``,
        ``'lape'``, ``'mmpretrain'``, ``'mmseg'``), or None if the keys fit
        none of them.
    """
    keys = [str(k) for k in state_dict]
    if keys and all(k.startswith('module.') for k in keys):
        keys = [k[len('module.'):] for k in keys]
    if _any(_MMPVG_PE_RE, keys):
        return 'mmpvg'
    # mmseg's ViT also has layers.N.ln1, so it is told apart first
    if _any(_MMSEG_ATTN_RE, keys):
        return 'mmseg'
    if _any(_MMPRETRAIN_VIT_RE, keys):
        return 'mmpretrain'
    # timm and LaPE name their keys without a prefix
    has_blocks = any(BLOCK_RE.match(k) for k in keys)
    has_stem = any(k in STEM_PARAMS for k in keys)
    has_pe = 'pos_embed' in keys or 'cls_token' in keys
    if has_blocks and (has_stem or has_pe):
        return 'lape' if _any(_PE_NORM_RE, keys) else 'timm'
    return None


def converter_for(fmt: Optional[str]) -> Optional[str]:
    """The command line that converts a format into an mmpvg checkpoint.

    Args:
        fmt (str | None): A format from :func:`detect_format`.

    Returns:
        str | None: The converter's path in this checkout (relative to its
        root), or None for ``'mmpvg'`` (nothing to convert) and None.

    Raises:
        ValueError: If ``fmt`` is not None and not one of :data:`FORMATS`.
    """
    if fmt is None or fmt == 'mmpvg':
        return None
    if fmt not in FORMATS:
        raise ValueError(f'Unknown checkpoint format {fmt!r}; known formats '
                         f'are {sorted(FORMATS)} (or None).')
    return _CONVERTERS[fmt]


def describe_format(fmt: Optional[str]) -> str:
    """One sentence for an error message: what the file is and what to do.

    Args:
        fmt (str | None): A format from :func:`detect_format`.

    Returns:
        str: E.g. "It is a timm/DeiT VisionTransformer checkpoint; convert it
        with tools/model_converters/deit2mpvg.py."
    """
    if fmt is None:
        return ('Its keys are of no format mmpvg knows (mmpvg, timm/DeiT, '
                'LaPE, mmpretrain or mmseg ViT).')
    converter = converter_for(fmt)
    if converter is None:
        return f'It is {FORMATS[fmt]}, but of another model.'
    return f'It is {FORMATS[fmt]}; convert it with {converter}.'
