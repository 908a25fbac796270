# Copyright (c) mmpvg contributors. All rights reserved.
from .rng_state_hook import RNGStateHook, seed_dataloader_worker

__all__ = ['RNGStateHook', 'seed_dataloader_worker']
