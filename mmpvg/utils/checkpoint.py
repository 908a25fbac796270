# Copyright (c) mmpvg contributors. All rights reserved.
"""Let mmengine 0.10.7 read back its own training checkpoints on torch >= 2.6.

torch >= 2.6 unpickles with ``weights_only=True`` by default and mmengine
0.10.7 does not pass the argument, so ``--resume`` and ``load_from`` of a
checkpoint that training wrote fail (mmengine issue 1655): its message hub
stores ``HistoryBuffer`` objects holding NumPy arrays, and each buffer
pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``.

Rather than turning ``weights_only`` off, which would run arbitrary pickled
code from any downloaded file, we allowlist exactly these types, and
``getattr`` only in the form mmengine uses it: on ``HistoryBuffer``, for its
registered statistics methods. Everything else is still refused.
"""
import pickle

import numpy as np
import torch


def _history_buffer_getattr(obj, name):
    """``getattr`` as the unpickler sees it: HistoryBuffer statistics only."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = {'min', 'max', 'mean', 'current',
               *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint: mmpvg '
        'only allows getattr(HistoryBuffer, <statistics method>).')


def mmengine_checkpoint_globals():
    """The non-tensor globals found in checkpoints that mmengine writes."""
    from mmengine.logging.history_buffer import HistoryBuffer
    try:  # NumPy >= 2
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import multiarray
    return [
        HistoryBuffer,
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        # the concrete dtype classes a pickled dtype is rebuilt from
        *(type(np.dtype(t)) for t in (
            np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
            np.uint16, np.uint32, np.uint64, np.float16, np.float32,
            np.float64)),
        (_history_buffer_getattr, 'builtins.getattr'),
    ]


def allow_mmengine_checkpoints():
    """Allowlist mmengine's checkpoint globals for ``torch.load``.

    Idempotent; a no-op on torch versions without ``add_safe_globals``.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(mmengine_checkpoint_globals())
