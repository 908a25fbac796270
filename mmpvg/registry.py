# Copyright (c) mmpvg contributors. All rights reserved.
"""Registration that every OpenMMLab scope finds, without importing them.

mmpretrain's, mmdet's and mmseg's registries are children of mmengine's
root registries, and a child registry that does not know a type asks its
parents. A class registered in the root ``MODELS`` is therefore found by
``type='MPVGViT'`` in configs whose ``default_scope`` is mmpretrain, mmdet
or mmseg alike, while ``import mmpvg`` imports none of those packages.
"""
from mmengine.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'register_model',
           'register_optim_wrapper_constructor']


def register_model():
    """Class decorator: register a model for every scope (mmengine's root
    ``MODELS``)."""
    return MODELS.register_module()


def register_optim_wrapper_constructor():
    """Class decorator: register an optimizer wrapper constructor for every
    scope (mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS``)."""
    return OPTIM_WRAPPER_CONSTRUCTORS.register_module()
