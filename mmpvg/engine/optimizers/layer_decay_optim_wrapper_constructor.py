# Copyright (c) mmpvg contributors. All rights reserved.
from mmpvg.registry import register_optim_wrapper_constructor


@register_optim_wrapper_constructor()
class LayerDecayOptimWrapperConstructor:
    """Layer-wise lr decay for classifiers, detectors and segmentors.

    Building it (``constructor='LayerDecayOptimWrapperConstructor'`` in an
    ``optim_wrapper`` config) returns a
    :class:`~mmpvg.engine.optimizers.backbone_layer_decay.BackboneLayerDecayOptimWrapperConstructor`,
    mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` driven by the
    model's ``backbone.get_layer_depth`` (see there for the rules and the
    ``paramwise_cfg`` keys). mmpretrain is imported at that moment, not by
    ``import mmpvg``.

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config.
        paramwise_cfg (dict, optional): ``layer_decay_rate``,
            ``norm_decay_mult``, ``bias_decay_mult``, ``flat_decay_mult``,
            ``custom_keys``.
    """

    def __new__(cls, optim_wrapper_cfg: dict, paramwise_cfg=None):
        from .backbone_layer_decay import \
            BackboneLayerDecayOptimWrapperConstructor
        return BackboneLayerDecayOptimWrapperConstructor(
            optim_wrapper_cfg, paramwise_cfg)
