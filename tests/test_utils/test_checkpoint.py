"""Loading mmengine training checkpoints under torch's weights_only default,
without letting other pickled code through."""
import io
import os
import pickle
import re

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


# ---------------------------------------------------------------------- #
# every checkpoint read with weights_only=True, whatever the environment
# ---------------------------------------------------------------------- #
class _WritesMarker:
    """A pickle that, if ever unpickled, creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A checkpoint with a code-running pickle, and torch's override of its
    weights_only default set in the environment."""
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'PWNED'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': {'x': _WritesMarker(marker)}}, path)
    return path, marker


def test_explicit_weights_only_beats_the_environment(evil):
    # what the project relies on (torch >= 2.6): the override only changes
    # the default, never an explicit weights_only=True
    path, marker = evil
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert not marker.exists()


def test_safe_loader_refuses_code_with_the_override_set(evil):
    from mmpvg.utils.checkpoint import load_checkpoint_file
    path, marker = evil
    with pytest.raises(pickle.UnpicklingError) as info:
        load_checkpoint_file(str(path))
    assert str(info.value).startswith(
        f"Checkpoint '{path}' holds objects other than tensors and the "
        'allowlisted types, and mmpvg does not unpickle arbitrary objects '
        '(weights_only=True); refused: ')
    assert 'posix.system' in str(info.value)
    assert not marker.exists()


def test_every_mmengine_scheme_is_read_by_mmpvg():
    from mmengine.runner.checkpoint import CheckpointLoader
    assert len(CheckpointLoader._schemes) >= 11
    for prefix, loader in CheckpointLoader._schemes.items():
        assert loader.__module__ == 'mmpvg.utils.checkpoint', prefix


def _serve(directory):
    import functools
    import http.server
    import threading
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(directory))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f'http://127.0.0.1:{server.server_address[1]}'


def test_mmengine_schemes_refuse_code(evil, tmp_path, monkeypatch):
    """Local files, http (mmengine's own passes weights_only=False through
    torch.hub), torchvision:// and open-mmlab:// (a URL or a file in
    MMENGINE_HOME) and s3 all go through the safe loader."""
    from mmengine.runner import checkpoint as mm_ckpt
    from mmengine.runner.checkpoint import _load_checkpoint
    path, marker = evil
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path))
    server, url = _serve(tmp_path)
    try:
        monkeypatch.setattr(mm_ckpt, 'get_torchvision_models',
                            lambda: {'evil': f'{url}/evil.pth'})
        monkeypatch.setattr(mm_ckpt, 'get_external_models',
                            lambda: {'evil_url': f'{url}/evil.pth',
                                     'evil_file': 'evil.pth'})

        class Backend:
            def get(self, filename):
                return path.read_bytes()

        import mmengine.fileio
        monkeypatch.setattr(mmengine.fileio, 'get_file_backend',
                            lambda *a, **k: Backend())
        for name in (str(path), f'{url}/evil.pth', 'torchvision://evil',
                     'open-mmlab://evil_url', 'openmmlab://evil_file',
                     's3://bucket/evil.pth'):
            with pytest.raises(pickle.UnpicklingError, match='posix.system'):
                _load_checkpoint(name, map_location='cpu')
        # the download is kept, and read safely again
        assert (tmp_path / 'torch_home/hub/checkpoints/evil.pth').exists()
    finally:
        server.shutdown()
    assert not marker.exists()


def test_http_checkpoint_loads(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import _load_checkpoint
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    torch.save({'state_dict': {'w': torch.arange(3.)}}, tmp_path / 'ok.pth')
    server, url = _serve(tmp_path)
    try:
        loaded = _load_checkpoint(f'{url}/ok.pth', map_location='cpu')
    finally:
        server.shutdown()
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.))


def test_deit_style_args_namespace_loads(tmp_path):
    import argparse

    from mmpvg.utils.checkpoint import load_checkpoint_file
    torch.save({'model': {'w': torch.ones(1)},
                'args': argparse.Namespace(lr=0.1)}, tmp_path / 'deit.pth')
    assert load_checkpoint_file(str(tmp_path / 'deit.pth'))['args'].lr == 0.1


@pytest.mark.parametrize('version,ok', [
    ('2.5.1', False), ('1.13.0+cu117', False), ('2.6.0+cu124', True),
    ('2.14.1', True), ('2.10.0a0+git123', True)])
def test_torch_floor(version, ok):
    from mmpvg.utils.checkpoint import check_torch_version
    if ok:
        check_torch_version(version)
    else:
        with pytest.raises(ImportError, match=r'mmpvg needs torch >= 2\.6 '
                           rf'.* found torch {re.escape(version)}'):
            check_torch_version(version)


# ---------------------------------------------------------------------- #
# files that are no checkpoint: one line that says what they are
# ---------------------------------------------------------------------- #
ACCEPTED = ('expected a checkpoint written by torch.save (a .pth file: a zip '
            'archive or a legacy pickle).')


def _png(path):
    from PIL import Image
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path, 'PNG')


def _jpeg(path):
    from PIL import Image
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path, 'JPEG')


def _truncated(path, legacy=False, keep=None):
    full = io.BytesIO()
    torch.save({'w': torch.randn(1000)}, full,
               _use_new_zipfile_serialization=not legacy)
    path.write_bytes(full.getvalue()[:keep or len(full.getvalue()) // 2])


def _foreign_zip(path):
    import zipfile
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('notes.txt', 'hello')


@pytest.mark.parametrize('write,what', [
    (lambda p: p.write_text('just some notes\n'),
     "a text file (starting 'just some notes')"),
    (lambda p: p.write_bytes(b''), 'an empty file (0 bytes)'),
    (_png, 'a PNG image'),
    (_jpeg, 'a JPEG image'),
    (lambda p: p.write_text('<!DOCTYPE html><html>Not found</html>'),
     'an HTML page (a failed download?)'),
    (lambda p: np.save(open(p, 'wb'), np.zeros(3)), 'a NumPy .npy array'),
    (lambda p: p.write_bytes(len(b'{"w": {}}').to_bytes(8, 'little')
                             + b'{"w": {}}'),
     'a safetensors file (mmpvg reads torch.save checkpoints; load it with '
     'safetensors and torch.save the state dict)'),
    (_foreign_zip, 'a zip archive of other files (no data.pkl)'),
])
def test_non_checkpoint_files_are_named(tmp_path, write, what):
    from mmpvg.utils.checkpoint import (CheckpointFileError,
                                        load_checkpoint_file)
    path = tmp_path / 'model.pth'
    write(path)
    with pytest.raises(CheckpointFileError) as info:
        load_checkpoint_file(str(path))
    assert str(info.value) == (f"Checkpoint '{path}' is {what}, not a "
                               f'PyTorch checkpoint; {ACCEPTED}')


@pytest.mark.parametrize('legacy,keep,why', [
    (False, None, 'its zip archive is incomplete'),
    (True, None, 'the tensor data stop early'),
    (True, 20, 'the pickle stops early')])
def test_truncated_checkpoints_are_named(tmp_path, legacy, keep, why):
    from mmpvg.utils.checkpoint import (CheckpointFileError,
                                        load_checkpoint_file)
    path = tmp_path / 'model.pth'
    _truncated(path, legacy, keep)
    with pytest.raises(CheckpointFileError) as info:
        load_checkpoint_file(str(path))
    size = path.stat().st_size
    assert str(info.value) == (
        f"Checkpoint '{path}' is a truncated or damaged torch.save file "
        f'({size} bytes; {why}); copy or download it again. '
        f'E{ACCEPTED[1:]}')


def test_missing_file_and_directory(tmp_path):
    from mmpvg.utils.checkpoint import load_checkpoint_file
    with pytest.raises(FileNotFoundError,
                       match=r"Checkpoint '.*nope.pth' does not exist\.$"):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))
    with pytest.raises(FileNotFoundError, match='it is a directory'):
        load_checkpoint_file(str(tmp_path))
