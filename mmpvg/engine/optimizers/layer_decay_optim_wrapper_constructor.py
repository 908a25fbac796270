# Copyright (c) mmpvg contributors. All rights reserved.
"""Layer-wise lr decay for every task, on mmpretrain's constructor.

mmpretrain's package imports its models (and through them mmdet and
mmcv.ops), so ``import mmpvg`` registers this class lazily
(:func:`mmpvg.registry.register_lazy`): this module is imported when a
config first builds the constructor.
"""
from functools import partial
from typing import Callable, List, Optional

import torch.nn as nn
from mmpretrain.engine.optimizers import \
    LearningRateDecayOptimWrapperConstructor

from mmpvg.registry import register_optim_wrapper_constructor


@register_optim_wrapper_constructor(force=True)  # replaces the stand-in
class LayerDecayOptimWrapperConstructor(
        LearningRateDecayOptimWrapperConstructor):
    """Layer-wise lr decay for classifiers, detectors and segmentors.

    mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` asks the
    *model* for ``get_layer_depth``, which mmpretrain's classifiers have but
    mmdet's detectors and mmseg's segmentors do not; mmseg's and mmdet's own
    constructors only recognise ConvNeXt/BEiT/MAE class names. This one asks
    the model's ``backbone`` instead, so ``MPVGViT`` and its ViT-Adapter get
    layer-wise rates in every task: the stem (patch embedding, pos_0) has
    depth 0, block ``i`` and its PE LayerNorm depth ``i + 1``, and
    everything else (Last LN, the adapter's own layers, necks, heads) the
    last depth, i.e. the base lr. A parameter at depth ``d`` of ``D`` gets
    ``lr * layer_decay_rate ** (D - 1 - d)``.

    ``paramwise_cfg`` takes the keys of mmpretrain's constructor:
    ``layer_decay_rate``, ``norm_decay_mult``, ``bias_decay_mult``,
    ``flat_decay_mult`` and ``custom_keys`` (``decay_mult`` only).

    Example:
        >>> optim_wrapper = dict(
        ...     optimizer=dict(type='AdamW', lr=12e-5, weight_decay=0.01),
        ...     constructor='LayerDecayOptimWrapperConstructor',
        ...     paramwise_cfg=dict(
        ...         layer_decay_rate=0.95, norm_decay_mult=0.,
        ...         flat_decay_mult=0.,
        ...         custom_keys={'.pos_embed': dict(decay_mult=0.),
        ...                      '.level_embed': dict(decay_mult=0.)}))
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   get_layer_depth: Optional[Callable] = None,
                   **kwargs) -> None:
        if get_layer_depth is None and not hasattr(module, 'get_layer_depth'):
            backbone = getattr(module, 'backbone', None)
            if not hasattr(backbone, 'get_layer_depth'):
                raise TypeError(
                    'LayerDecayOptimWrapperConstructor needs a model with a '
                    '`get_layer_depth` method or a `backbone` that has one '
                    f'(e.g. MPVGViT); got {type(module).__name__} with '
                    f'backbone {type(backbone).__name__}.')
            get_layer_depth = partial(
                backbone.get_layer_depth, prefix='backbone.')
        super().add_params(params, module, prefix, get_layer_depth, **kwargs)
