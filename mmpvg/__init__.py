# Copyright (c) mmpvg contributors. All rights reserved.
"""mmpvg: MPVG and its position-embedding baselines for OpenMMLab.

``import mmpvg`` registers every model in the mmpretrain, mmdet and mmseg
registries and lets mmengine load the checkpoints its training writes under
torch >= 2.6.
"""
from .utils.checkpoint import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

from .engine import *  # noqa: E402,F401,F403
from .models import *  # noqa: E402,F401,F403

__version__ = '0.1.0'
