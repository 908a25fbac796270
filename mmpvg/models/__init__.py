from .backbones import *  # noqa: F401,F403
from .deploy import fold_last_ln_pe  # noqa: F401
from .layers import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403


def __getattr__(name):
    # the lazily imported backbones (see backbones/__init__.py)
    from . import backbones
    if name in backbones._LAZY:
        return getattr(backbones, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
