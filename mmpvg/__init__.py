# Copyright (c) mmpvg contributors. All rights reserved.
"""mmpvg: MPVG and its position-embedding baselines for OpenMMLab.

``import mmpvg`` registers every model in the mmpretrain, mmdet and mmseg
registries, reads every checkpoint with ``weights_only=True`` and an
allowlist (also the ones mmengine loads: ``load_from``, ``--resume``,
``init_cfg``), and checks that ``Pretrained`` checkpoints fit the model
(:mod:`mmpvg.utils.checkpoint`).
"""
from .utils.checkpoint import install as _install_checkpoint_loading

_install_checkpoint_loading()

from .engine import *  # noqa: E402,F401,F403
from .models import *  # noqa: E402,F401,F403

__version__ = '0.1.0'
