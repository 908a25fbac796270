# Copyright (c) mmpvg contributors. All rights reserved.
"""One decorator that registers a module in every OpenMMLab scope we serve.

``custom_imports=dict(imports=['mmpvg'])`` in an mmpretrain, mmdet or mmseg
config then finds ``type='MPVGViT'`` under that config's ``default_scope``.
"""
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS

SCOPES = {
    'mmpretrain': MMPRETRAIN_MODELS,
    'mmdet': MMDET_MODELS,
    'mmseg': MMSEG_MODELS,
}


def register_model(scopes=tuple(SCOPES)):
    """Class decorator: register a model class in the given scopes.

    Args:
        scopes (Sequence[str]): Scopes among 'mmpretrain', 'mmdet', 'mmseg'.
            Defaults to all three.
    """
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f'Unknown scopes {sorted(unknown)}; '
                         f'choose from {list(SCOPES)}.')

    def _register(cls):
        for scope in scopes:
            SCOPES[scope].register_module(module=cls)
        return cls

    return _register
