"""Loading mmengine training checkpoints under torch's weights_only default,
without letting other pickled code through."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmpvg  # noqa: F401  (installs the allowlist)


def test_message_hub_state_round_trips(tmp_path):
    hub = MessageHub.get_instance('mmpvg-test')
    for i in range(5):
        hub.update_scalar('train/loss', float(i))
    hub.update_info('eta', np.float64(3.5))
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': hub.state_dict(),
                'state_dict': {'w': torch.ones(2)}}, path)
    loaded = torch.load(path)  # weights_only=True is torch's default
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == 2.0
    assert loaded['message_hub']['runtime_info']['eta'] == 3.5


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


class _GetattrEscape:
    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.mark.parametrize('payload,match', [
    (_RunsCode(), 'system'),
    (_GetattrEscape(), r"getattr\(.*'__init__'\) is not allowed"),
])
def test_other_pickled_code_is_still_refused(tmp_path, payload, match):
    path = tmp_path / 'evil.pth'
    torch.save({'x': payload}, path)
    with pytest.raises(pickle.UnpicklingError, match=match):
        torch.load(path)
