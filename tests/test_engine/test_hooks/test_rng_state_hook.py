"""RNGStateHook's state round trip and the dataloader worker seeding.

The end-to-end check (a resumed demo run gives the uninterrupted run's
weights) is tests/test_tools/test_resume.py.
"""
import random

import numpy as np
import torch

from mmpvg.engine.hooks.rng_state_hook import (get_rng_state,
                                               seed_dataloader_worker,
                                               set_rng_state)


def _draws():
    return (random.random(), float(np.random.rand()), float(np.random.randn()),
            torch.rand(3).tolist())


def test_state_round_trip_through_a_safe_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    np.random.randn()  # leaves a cached Gaussian in NumPy's state
    state = get_rng_state()
    expected = _draws()
    _draws()  # move every generator on
    path = tmp_path / 'ckpt.pth'
    torch.save({'rng_state': state}, path)
    # what a checkpoint holds must load with weights_only=True as it is
    loaded = torch.load(path, weights_only=True)['rng_state']
    set_rng_state(loaded)
    assert _draws() == expected


def test_worker_seeds_follow_the_torch_seed_and_the_rank(monkeypatch):
    def seeds(base, rank):
        monkeypatch.setenv('RANK', str(rank))
        torch.manual_seed(base)  # what torch does in a worker
        seed_dataloader_worker(0)
        return _draws()

    assert seeds(5, 0) == seeds(5, 0)
    assert seeds(5, 0) != seeds(6, 0)  # a new epoch's iterator
    assert seeds(5, 0) != seeds(5, 1)  # another process
