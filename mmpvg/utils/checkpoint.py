# Copyright (c) mmpvg contributors. All rights reserved.
"""Reading checkpoints safely, whatever the environment says.

Every checkpoint mmpvg reads goes through :func:`load_checkpoint_file`:
``torch.load`` with an explicit ``weights_only=True`` and the project's
allowlist. ``import mmpvg`` re-registers mmengine's ``CheckpointLoader``
schemes (local files, http(s), torchvision://, open-mmlab://, mmcls://,
s3/petrel, pavi) onto it, so ``--resume``, ``load_from``,
``init_cfg=dict(type='Pretrained')``, the fold tool, the PE analysis and
the converters all read files the same way. Why not rely on torch's
default: ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns the default off (it
cannot override an explicit ``weights_only=True``, torch >= 2.6), and
mmengine's http loader goes through ``torch.hub``, which passes
``weights_only=False`` itself.

The allowlist: mmengine 0.10.7 stores ``HistoryBuffer`` objects holding
NumPy arrays in its message hub (mmengine issue 1655), and each buffer
pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``.
Rather than turning ``weights_only`` off, which would run arbitrary pickled
code from any downloaded file, we allowlist exactly these types, and
``getattr`` only in the form mmengine uses it: on ``HistoryBuffer``, for its
registered statistics methods; ``argparse.Namespace`` is allowed while
loading, since DeiT and LaPE checkpoints store their command line as one.
Everything else is refused.

A file that is not a checkpoint at all (text, an image, an empty or a
truncated file) is named as such in one line, before or instead of
torch's own error.
"""
import argparse
import io
import os
import os.path as osp
import pickle

import numpy as np
import torch

from .errors import InputError


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


# ---------------------------------------------------------------------- #
# torch floor
# ---------------------------------------------------------------------- #
# torch 2.6: weights_only=True by default, add_safe_globals accepts
# (function, 'module.name') pairs, and TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
# leaves an explicit weights_only=True alone.
TORCH_FLOOR = (2, 6)


def check_torch_version(version: str = torch.__version__):
    """Refuse a torch older than :data:`TORCH_FLOOR`.

    Raises:
        ImportError: If ``version`` is older.
    """
    nums = []
    for part in version.split('+')[0].split('.')[:2]:
        digits = ''.join(c for c in part if c.isdigit())
        nums.append(int(digits or 0))
    if tuple(nums) < TORCH_FLOOR:
        raise ImportError(
            f'mmpvg needs torch >= {TORCH_FLOOR[0]}.{TORCH_FLOOR[1]} (safe '
            'checkpoint loading: weights_only=True with an allowlist), found '
            f'torch {version}; install a newer torch (see README.md, '
            'Installing).')


# ---------------------------------------------------------------------- #
# what a file is
# ---------------------------------------------------------------------- #
ACCEPTED_FILES = ('expected a checkpoint written by torch.save (a .pth file: '
                  'a zip archive or a legacy pickle)')

# (magic bytes at offset 0, what the file is)
_MAGIC = (
    (b'\x89PNG\r\n\x1a\n', 'a PNG image'),
    (b'\xff\xd8\xff', 'a JPEG image'),
    (b'GIF87a', 'a GIF image'),
    (b'GIF89a', 'a GIF image'),
    (b'II*\x00', 'a TIFF image'),
    (b'MM\x00*', 'a TIFF image'),
    (b'\x93NUMPY', 'a NumPy .npy array'),
    (b'\x1f\x8b', 'a gzip archive (unpack it first)'),
    (b'BZh', 'a bzip2 archive (unpack it first)'),
    (b'\xfd7zXZ\x00', 'an xz archive (unpack it first)'),
    (b'7z\xbc\xaf\x27\x1c', 'a 7-Zip archive (unpack it first)'),
    (b'%PDF', 'a PDF document'),
    (b'\x89HDF\r\n\x1a\n', 'an HDF5 file (e.g. Keras weights)'),
)


def describe_non_checkpoint(head: bytes, size: int) -> 'str | None':
    """What a file is, if its first bytes show it is no torch.save file.

    Args:
        head (bytes): The first bytes of the file (64 are enough).
        size (int): The file's size in bytes.

    Returns:
        str | None: E.g. 'a PNG image', or None if it may be a checkpoint
        (a zip archive or a pickle).
    """
    if size == 0:
        return 'an empty file (0 bytes)'
    if head.startswith(b'PK\x03\x04') or head[:1] == b'\x80':
        return None  # torch's zip format, or a legacy (pickle) one
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head.startswith(b'RIFF') and head[8:12] == b'WEBP':
        return 'a WebP image'
    if len(head) > 8 and head[8:9] == b'{' and \
            int.from_bytes(head[:8], 'little') < 100_000_000:
        return ('a safetensors file (mmpvg reads torch.save checkpoints; '
                'load it with safetensors and torch.save the state dict)')
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError as e:  # a character cut at the end is fine
        text = head[:e.start].decode('utf-8') if e.start > len(head) - 4 \
            else None
    if text is not None and '\x00' not in text and \
            all(c.isprintable() or c in '\t\r\n' for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ''
        if first.lower().startswith(('<!doctype html', '<html')):
            return 'an HTML page (a failed download?)'
        return 'a text file' + (f' (starting {first!r})' if first else '')
    return f'not a torch.save file (it starts with bytes {head[:8].hex()})'


def _file_error(path: str, what: str) -> 'CheckpointFileError':
    return CheckpointFileError(
        f'Checkpoint {path!r} is {what}, not a PyTorch checkpoint; '
        f'{ACCEPTED_FILES}.')


class CheckpointFileError(InputError):
    """A file given as a checkpoint that is none, or is damaged."""


def _unpickling_message(path: str, error: Exception) -> str:
    text = str(error)
    # torch's message is long; its line naming the refused global is what
    # tells the user what the file holds
    reason = next((line.strip() for line in text.splitlines()
                   if 'Unsupported global' in line or 'GLOBAL' in line),
                  text.strip().splitlines()[0] if text.strip() else '')
    return (f'Checkpoint {path!r} holds objects other than tensors and the '
            'allowlisted types, and mmpvg does not unpickle arbitrary '
            f'objects (weights_only=True); refused: {reason}')


_LAST_LOADED = ['the checkpoint']


def last_loaded() -> str:
    """The name of the file :func:`load_checkpoint_file` read last (for
    messages of code that gets the loaded checkpoint, not its name)."""
    return _LAST_LOADED[0]


def load_checkpoint_file(file, map_location=None, name: str = None):
    """``torch.load`` a checkpoint with ``weights_only=True`` and the
    project's allowlist, however the environment is set.

    Args:
        file (str | bytes | io.BytesIO): A local path, or the file's bytes.
        map_location: As for ``torch.load``. Defaults to None.
        name (str, optional): What to call the file in messages (the URL it
            came from); defaults to the path.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: If a path is given and it is not a file.
        CheckpointFileError: If the file is not a torch.save checkpoint
            (text, an image, empty, ...), or is truncated or damaged.
        pickle.UnpicklingError: If it holds objects outside the allowlist.
    """
    if isinstance(file, (bytes, bytearray)):
        file = io.BytesIO(file)
    if isinstance(file, io.BytesIO):
        name = name or 'the downloaded checkpoint'
        data = file.getvalue()
        size, head = len(data), data[:64]
    else:
        path = osp.expanduser(str(file))
        name = name or str(file)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'Checkpoint {name!r} does not exist'
                + (' (it is a directory; give the .pth file in it)'
                   if osp.isdir(path) else '') + '.')
        size = osp.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(64)
        file = path
    _LAST_LOADED[0] = name
    what = describe_non_checkpoint(head, size)
    if what is not None:
        raise _file_error(name, what)
    # An explicit weights_only=True: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD only
    # overrides torch's default, never the argument (torch >= 2.6).
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(file, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as e:
        if 'truncated' in str(e):
            raise _damaged(name, size, 'the pickle stops early') from e
        raise pickle.UnpicklingError(_unpickling_message(name, e)) from e
    except EOFError as e:
        raise _damaged(name, size, 'the pickle stops early') from e
    except RuntimeError as e:
        msg = str(e)
        if 'central directory' in msg or 'PytorchStreamReader' in msg:
            raise _damaged(name, size, 'its zip archive is incomplete') from e
        if 'unexpected EOF' in msg:  # legacy format, cut in the tensor data
            raise _damaged(name, size, 'the tensor data stop early') from e
        if 'inline_container' in msg or 'data.pkl' in msg:
            raise _file_error(
                name, 'a zip archive of other files (no data.pkl)') from e
        raise


def _damaged(name: str, size: int, why: str) -> CheckpointFileError:
    return CheckpointFileError(
        f'Checkpoint {name!r} is a truncated or damaged torch.save file '
        f'({size} bytes; {why}); copy or download it again. '
        f'{ACCEPTED_FILES[0].upper()}{ACCEPTED_FILES[1:]}.')


# ---------------------------------------------------------------------- #
# mmengine's CheckpointLoader schemes, read safely
# ---------------------------------------------------------------------- #
def _load_from_local(filename, map_location=None):
    return load_checkpoint_file(filename, map_location)


def _download(url: str, model_dir=None, progress: bool = False) -> str:
    """The local copy of ``url`` in torch hub's cache, downloaded once."""
    from urllib.parse import urlparse

    from torch.hub import HASH_REGEX, download_url_to_file, get_dir
    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    filename = osp.basename(urlparse(url).path)
    cached = osp.join(model_dir, filename)
    if not osp.exists(cached):
        match = HASH_REGEX.search(filename)
        download_url_to_file(url, cached, match.group(1) if match else None,
                             progress=progress)
    return cached


def _load_from_http(filename, map_location=None, model_dir=None,
                    progress=False):
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()
    # rank 0 downloads, the others read its copy
    if rank == 0:
        path = _download(filename, model_dir, progress)
    if world_size > 1:
        barrier()
        if rank > 0:
            path = _download(filename, model_dir, progress)
    return load_checkpoint_file(path, map_location, name=filename)


def _load_from_torchvision(filename, map_location=None):
    from mmengine.runner.checkpoint import get_torchvision_models
    name = filename.split('://', 1)[1]
    return _load_from_http(get_torchvision_models()[name], map_location)


def _load_from_openmmlab(filename, map_location=None):
    from mmengine.runner.checkpoint import (_get_mmengine_home,
                                            get_deprecated_model_names,
                                            get_external_models)
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return _load_from_http(url, map_location)
    return load_checkpoint_file(osp.join(_get_mmengine_home(), url),
                                map_location)


def _load_from_mmcls(filename, map_location=None):
    from mmengine.runner.checkpoint import (_process_mmcls_checkpoint,
                                            get_mmcls_models)
    url = get_mmcls_models()[filename[len('mmcls://'):]]
    return _process_mmcls_checkpoint(_load_from_http(url, map_location))


def _load_from_ceph(filename, map_location=None, backend='petrel'):
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}) \
        .get(filename)
    return load_checkpoint_file(data, map_location, name=filename)


def _load_from_pavi(filename, map_location=None):
    import tempfile
    try:
        from pavi import modelcloud
    except ImportError as e:
        raise ImportError('pavi:// checkpoints need the pavi package.') from e
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, model.name)
        model.download(path)
        return load_checkpoint_file(path, map_location, name=filename)


# mmengine's prefixes and the safe loader of each; the function names keep
# mmengine's 'load_from_' so that its log ("Loads checkpoint by local
# backend") reads as before.
_SCHEMES = (
    ('', _load_from_local, 'local'),
    (('http://', 'https://'), _load_from_http, 'http'),
    (('modelzoo://', 'torchvision://'), _load_from_torchvision,
     'torchvision'),
    (('open-mmlab://', 'openmmlab://'), _load_from_openmmlab, 'openmmlab'),
    ('mmcls://', _load_from_mmcls, 'mmcls'),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), _load_from_ceph, 'ceph'),
    ('pavi://', _load_from_pavi, 'pavi'),
)
for _, _fn, _name in _SCHEMES:
    _fn.__name__ = f'load_from_{_name}'


def install_safe_checkpoint_loaders():
    """Register :data:`_SCHEMES` in mmengine's ``CheckpointLoader``,
    replacing mmengine's loaders; idempotent."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes, loader, _ in _SCHEMES:
        CheckpointLoader.register_scheme(prefixes, loader, force=True)


def install():
    """What ``import mmpvg`` does for checkpoints: check the torch floor,
    allowlist mmengine's types, read every ``CheckpointLoader`` scheme
    safely and check that ``Pretrained`` checkpoints fit. Idempotent."""
    check_torch_version()
    allow_mmengine_checkpoints()
    install_safe_checkpoint_loaders()
    from .checkpoint_fit import install_fit_checks
    install_fit_checks()
