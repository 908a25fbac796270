# Copyright (c) mmpvg contributors. All rights reserved.
"""Deploy-time simplification of MPVG classifiers.

After GAP and a linear head, MPVG's Last-LN term LN'_last(pos_k) is an
input-independent vector: ``W (mean(LN(x)) + t) + b = W mean(LN(x)) + (W t + b)``
with ``t = mean over tokens of LN'_last(pos_k)``. Folding ``W t`` into the
head bias gives a PVG-structured model with exactly the same logits at the
token grid ``t`` was computed for (``t`` depends on the grid through the
interpolation of pos_0, so another input size needs its own fold).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .backbones import PEBackbone


@torch.no_grad()
def fold_last_ln_pe(classifier: nn.Module,
                    img_size: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """Fold MPVG's Last-LN PE term into the classifier's head bias, in place.

    The backbone's PE module drops LN'_last (``last_ln_pe=None``), so
    the folded state dict loads into the same config with
    ``model.backbone.last_ln_pe=False``.

    Args:
        classifier (nn.Module): An mmpretrain ``ImageClassifier`` whose
            backbone is an mmpvg backbone family (:class:`PEBackbone`: the
            plain ViT, T2T-ViT, CeiT, ...) with a Last-LN PE and a pooled
            output, and whose head has a linear ``fc`` (e.g.
            ``LinearClsHead``).
        img_size (int | tuple, optional): Input size the fold is exact for.
            Defaults to the backbone's ``img_size``.

    Returns:
        tuple[int, int]: The token grid the fold was computed for.
    """
    backbone = getattr(classifier, 'backbone', None)
    fc = getattr(getattr(classifier, 'head', None), 'fc', None)
    if not isinstance(backbone, PEBackbone):
        raise TypeError('fold_last_ln_pe needs a classifier with an mmpvg '
                        'backbone (MPVGViT or another PEBackbone family), '
                        f'got {type(backbone).__name__}.')
    if not backbone.pe.has_last_term:
        raise ValueError(
            f'Nothing to fold: this {type(backbone).__name__} '
            f'(pe_mode={backbone.pe_mode!r}) has no Last-LN PE term.')
    term = backbone.pooled_last_term(img_size)  # (C,); checks the structure
    if not isinstance(fc, nn.Linear) or fc.in_features != term.numel():
        raise ValueError('fold_last_ln_pe needs a head with a linear `fc` '
                         f'taking {term.numel()} features.')
    shift = fc.weight @ term
    if fc.bias is None:
        fc.bias = nn.Parameter(shift)
    else:
        fc.bias.add_(shift)
    backbone.pe.remove_last_term()
    return (backbone.patch_resolution if img_size is None else
            backbone.token_grid(img_size))
