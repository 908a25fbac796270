from .base import PEBackbone
from .mpvg_ceit import CeiTGrid, MPVGCeiT
from .mpvg_vit import MPVGViT, TokenGrid
from .vit_adapter import MPVGViTAdapter

import importlib as _importlib

from mmpvg.registry import MODELS as _MODELS
from mmpvg.registry import register_lazy as _register_lazy

# Families built on mmpretrain's modules (whose package imports mmdet and
# mmcv.ops): registered now, imported when a config builds them or on first
# attribute access (``from mmpvg.models import MPVGSwin``). Not in __all__,
# so that ``import *`` stays light.
_LAZY = {'MPVGSwin': 'mmpvg.models.backbones.mpvg_swin'}
for _name, _module in _LAZY.items():
    _register_lazy(_MODELS, _name, _module)


def __getattr__(name):
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['CeiTGrid', 'MPVGCeiT', 'MPVGViT', 'MPVGViTAdapter', 'PEBackbone',
           'TokenGrid']
