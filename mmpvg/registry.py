# Copyright (c) mmpvg contributors. All rights reserved.
"""Decorators that register a class in every OpenMMLab scope we serve.

``custom_imports=dict(imports=['mmpvg'])`` in an mmpretrain, mmdet or mmseg
config then finds e.g. ``type='MPVGViT'`` under that config's
``default_scope``.
"""
import importlib

SCOPES = ('mmpretrain', 'mmdet', 'mmseg')


def _registry(scope: str, name: str):
    return getattr(importlib.import_module(f'{scope}.registry'), name)


def _register_in(registry_name: str, scopes):
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f'Unknown scopes {sorted(unknown)}; '
                         f'choose from {list(SCOPES)}.')

    def _register(cls):
        for scope in scopes:
            _registry(scope, registry_name).register_module(module=cls)
        return cls

    return _register


def register_model(scopes=SCOPES):
    """Class decorator: register a model in the MODELS of ``scopes``.

    Args:
        scopes (Sequence[str]): Among 'mmpretrain', 'mmdet', 'mmseg'.
            Defaults to all three.
    """
    return _register_in('MODELS', scopes)


def register_optim_wrapper_constructor(scopes=SCOPES):
    """Class decorator: register in OPTIM_WRAPPER_CONSTRUCTORS of ``scopes``."""
    return _register_in('OPTIM_WRAPPER_CONSTRUCTORS', scopes)
