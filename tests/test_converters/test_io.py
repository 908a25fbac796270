"""mmpvg.converters.io: finding the state dict in training checkpoints,
loading them, and saving that never replaces a file unless forced."""
import argparse
import os
import os.path as osp

import pytest
import torch

from mmpvg.converters import (load_checkpoint, save_checkpoint,
                              unwrap_state_dict)
from mmpvg.testing.references import digest, timm_vit


def test_unwrap_and_load_training_checkpoints(tmp_path):
    state = timm_vit().state_dict()
    deit_style = {'model': state, 'optimizer': {'state': {}}, 'epoch': 3,
                  'args': argparse.Namespace(model='deit_tiny', lr=5e-4)}
    path = str(tmp_path / 'deit.pth')
    torch.save(deit_style, path)
    unwrapped, ignored = unwrap_state_dict(load_checkpoint(path))
    assert ignored == ['optimizer', 'epoch', 'args']
    assert unwrapped.keys() == state.keys()

    unwrapped, ignored = unwrap_state_dict(
        {'state_dict': {'module.' + k: v for k, v in state.items()},
         'meta': {}})
    assert ignored == ['meta'] and unwrapped.keys() == state.keys()
    with pytest.raises(ValueError, match='No state dict found'):
        unwrap_state_dict({'epoch': 3, 'args': 'x'})


def test_save_checkpoint_never_overwrites(tmp_path):
    path = str(tmp_path / 'out' / 'sub' / 'x.pth')
    save_checkpoint({'a': torch.ones(1)}, path)
    before = digest(path)
    with pytest.raises(FileExistsError, match='already exists; it was left '
                       'unchanged.*--force'):
        save_checkpoint({'a': torch.zeros(1)}, path)
    assert digest(path) == before
    save_checkpoint({'a': torch.zeros(1)}, path, force=True)
    assert torch.equal(load_checkpoint(path)['a'], torch.zeros(1))
    assert os.listdir(osp.dirname(path)) == ['x.pth']  # no temporary left
