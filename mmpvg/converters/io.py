# Copyright (c) mmpvg contributors. All rights reserved.
"""Checkpoint files: find the state dict, load safely, save without loss.

What every converter command line does with files, and nothing else: the
conversions themselves are pure functions on state dicts.
"""
import os
import os.path as osp
import uuid
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

__all__ = ['unwrap_state_dict', 'load_checkpoint', 'check_output_path',
           'save_checkpoint']


def unwrap_state_dict(checkpoint: Mapping) -> Tuple[Dict[str, Any],
                                                    List[str]]:
    """Find the model's state dict inside a loaded checkpoint.

    Accepts a bare state dict, mmengine/timm checkpoints
    (``{'state_dict': ...}``) and DeiT/LaPE training checkpoints
    (``{'model': ...}``), and strips a ``module.`` prefix that every key
    carries (a model saved inside DistributedDataParallel).

    Args:
        checkpoint (Mapping): What ``torch.load`` returned.

    Returns:
        tuple[dict, list[str]]: The state dict, and the names of the other
        top-level entries of the checkpoint that it leaves out (such as
        ``optimizer`` or ``model_ema``; empty for a bare state dict).

    Raises:
        ValueError: If no state dict can be found.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(
            f'The checkpoint is a {type(checkpoint).__name__}, not a dict; '
            'expected a state dict or a dict with a "state_dict" or "model" '
            'entry.')
    ignored: List[str] = []
    state_dict = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), Mapping):
            state_dict = checkpoint[key]
            ignored = [k for k in checkpoint if k != key]
            break
    not_tensors = [k for k, v in state_dict.items()
                   if not isinstance(v, torch.Tensor)]
    if not state_dict or not_tensors:
        raise ValueError(
            'No state dict found in the checkpoint: expected a dict of '
            'tensors, or a dict with a "state_dict" or "model" entry holding '
            f'one; got top-level entries {sorted(map(str, checkpoint))[:10]}'
            + (f' (not tensors: {sorted(map(str, not_tensors))[:10]})'
               if not_tensors else '') + '.')
    if all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    return dict(state_dict), ignored


def load_checkpoint(path: str) -> Any:
    """``torch.load`` a checkpoint on the CPU with ``weights_only=True``.

    Besides tensors and the mmengine types that ``import mmpvg``
    allowlists, ``argparse.Namespace`` is allowed while loading: DeiT and
    LaPE training checkpoints store their command line as one (``args``).
    Nothing else that pickle could execute is.

    Args:
        path (str): The checkpoint file.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If it is no torch.save checkpoint, or is truncated
            (:class:`~mmpvg.utils.checkpoint.CheckpointFileError`).
        pickle.UnpicklingError: If it holds objects outside the allowlist.
    """
    # the project's one safe loader: it also names a file that is no
    # checkpoint (text, an image, empty, truncated) in one line
    from mmpvg.utils.checkpoint import load_checkpoint_file
    return load_checkpoint_file(path, map_location='cpu')


def check_output_path(path: str, force: bool = False,
                      src: Optional[str] = None) -> None:
    """Refuse an output path whose file would be lost by writing it.

    Args:
        path (str): The output file.
        force (bool): Allow replacing an existing file. Defaults to False.
        src (str, optional): The input file, which is never replaced (not
            even with ``force``).

    Raises:
        FileExistsError: If ``path`` exists and ``force`` is False, or
            ``path`` is ``src``.
        IsADirectoryError: If ``path`` is a directory.
    """
    if src is not None and osp.exists(path) and osp.exists(src) \
            and osp.samefile(src, path):
        raise FileExistsError(
            f'Output {path!r} is the source checkpoint; write the converted '
            'weights to another file.')
    if osp.isdir(path):
        raise IsADirectoryError(
            f'Output {path!r} is a directory; give the path of a file.')
    if osp.lexists(path) and not force:
        raise FileExistsError(
            f'Output file {path!r} already exists; it was left unchanged. '
            'Choose another path, or pass --force to replace it.')


def save_checkpoint(checkpoint: Any, path: str, force: bool = False) -> None:
    """Save with ``torch.save``, never overwriting a file unless ``force``.

    The parent directory is created. The data go to a temporary file in the
    same directory that is then renamed onto ``path``, so an interrupted
    save never leaves a truncated file, nor destroys the file that
    ``force`` replaces.

    Args:
        checkpoint (Any): What to save.
        path (str): The output file.
        force (bool): Replace an existing file. Defaults to False.

    Raises:
        FileExistsError: If ``path`` exists and ``force`` is False.
        IsADirectoryError: If ``path`` is a directory.
    """
    check_output_path(path, force=force)
    out_dir = osp.dirname(osp.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would outlive the rename; O_EXCL
    # with mode 0666 gives the usual permissions (minus the umask).
    tmp = osp.join(out_dir,
                   f'.{osp.basename(path)}.{uuid.uuid4().hex[:12]}.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(checkpoint, f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
