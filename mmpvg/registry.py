# Copyright (c) mmpvg contributors. All rights reserved.
"""Registration that every OpenMMLab scope finds, without importing them.

mmpretrain's, mmdet's and mmseg's registries are children of mmengine's
root registries, and a child registry that does not know a type asks its
parents. A class registered in the root ``MODELS`` is therefore found by
``type='MPVGViT'`` in configs whose ``default_scope`` is mmpretrain, mmdet
or mmseg alike, while ``import mmpvg`` imports none of those packages.

A class whose module needs a heavy package (mmpretrain's models, which
import mmdet and mmcv.ops) is registered lazily with :func:`register_lazy`:
a light stand-in under its name imports the real module when a config
first builds it, and that module replaces the stand-in by the real class.
"""
import importlib

from mmengine.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, Registry

__all__ = ['MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'register_lazy',
           'register_model', 'register_optim_wrapper_constructor']


def register_model(force: bool = False):
    """Class decorator: register a model for every scope (mmengine's root
    ``MODELS``). ``force=True`` replaces a stand-in of :func:`register_lazy`.
    """
    return MODELS.register_module(force=force)


def register_optim_wrapper_constructor(force: bool = False):
    """Class decorator: register an optimizer wrapper constructor for every
    scope (mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS``)."""
    return OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=force)


def register_lazy(registry: Registry, name: str, module: str) -> type:
    """Register ``name`` now; import ``module`` only when it is built.

    Args:
        registry (Registry): A root registry (``MODELS``, ...).
        name (str): The type name configs use.
        module (str): The module that defines the class and registers it
            under ``name`` with ``force=True``.

    Returns:
        type: The stand-in class.
    """

    def __new__(cls, *args, **kwargs):
        importlib.import_module(module)
        real = registry.get(name)
        if real is cls:
            raise ImportError(f'{module} did not register {name!r} in '
                              f'{registry.name}.')
        return real(*args, **kwargs)

    stand_in = type(name, (), dict(
        __new__=__new__,
        __doc__=f'Stand-in that imports {module} and builds its {name}.'))
    registry.register_module(name=name, module=stand_in)
    return stand_in
