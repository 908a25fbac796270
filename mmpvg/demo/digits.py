# Copyright (c) mmpvg contributors. All rights reserved.
"""Embedded demo data, made locally without any download.

The classification demo uses scikit-learn's bundled handwritten digits
(1797 real 8x8 scans of the digits 0-9), upsampled to RGB images and written
in the ImageNet folder layout (``train/<class>/*.png``, ``val/<class>/*.png``)
that mmpretrain's ``CustomDataset`` reads.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable

import numpy as np
from PIL import Image

MARKER = '.mmpvg_demo.json'


def _list_files(root: str) -> list:
    """Every file (or link) under ``root``, as sorted '/'-separated paths
    relative to it."""
    found = []
    for folder, _, names in os.walk(root):
        rel = osp.relpath(folder, root)
        for name in names:
            found.append(name if rel == '.' else
                         '/'.join(rel.split(os.sep) + [name]))
    return sorted(found)


def _dump_marker(root: str, content: dict) -> None:
    """Write ``root``'s marker file at once (through a temporary name)."""
    tmp = osp.join(root, MARKER + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(content, f)
    os.replace(tmp, osp.join(root, MARKER))


def _check_target(root: str):
    """The marker of the mmpvg demo in ``root``; refuse to touch other data.

    Returns:
        dict | None: The marker (``spec``, ``counts`` and ``files``, the
        list of what the demo wrote), or None if ``root`` is missing or an
        empty directory.

    Raises:
        FileExistsError: If ``root`` is anything else without a marker.
    """
    marker = osp.join(root, MARKER)
    if osp.isfile(marker):
        with open(marker) as f:
            return json.load(f)
    if osp.exists(root) and (not osp.isdir(root) or os.listdir(root)):
        raise FileExistsError(
            f'{root!r} exists and was not written by mmpvg\'s demo generator '
            f'(no {MARKER}); refusing to overwrite it. Choose another '
            'directory or remove it yourself.')
    return None


def _replace_own_demo(root: str, old: dict, tmp: str, new_files: list):
    """Replace the demo of other settings in ``root`` by the complete one
    in ``tmp``, removing only the files the old one lists as its own.

    Raises:
        FileExistsError: If the old demo lists no files (an older mmpvg
            wrote it), or a file of someone else's is where the new demo
            writes one of its own. Nothing is changed then.
    """
    old_files = old.get('files')
    if old_files is None:
        raise FileExistsError(
            f'{root!r} holds an mmpvg demo with other settings, written by '
            'an older mmpvg that did not record which files it wrote, so '
            'they cannot be told from files of yours; refusing to delete '
            'anything. Move any file of yours out and remove the directory '
            'yourself, or choose another directory.')
    foreign = set(_list_files(root)) - set(old_files) - {MARKER}
    needed = set(new_files)
    for rel in new_files:  # the folders the new files go in are needed too
        parts = rel.split('/')
        needed.update('/'.join(parts[:i]) for i in range(1, len(parts)))
    clash = sorted(foreign & needed)
    if clash:
        raise FileExistsError(
            f'{root!r}: {", ".join(clash[:3])} '
            f'{"is" if len(clash) == 1 else "are"} not of mmpvg\'s demo but '
            'where the demo with the new settings writes its own files; '
            'refusing to overwrite. Move them away, or choose another '
            'directory.')
    parent = osp.dirname(osp.abspath(root))
    if not foreign:
        # Only our files: swap the directories, then delete the old one.
        trash = tempfile.mkdtemp(prefix='.demo-old-', dir=parent)
        os.replace(root, osp.join(trash, 'old'))
        os.replace(tmp, root)
        shutil.rmtree(trash, ignore_errors=True)
        return
    # Files of someone else's stay. The marker first lists what either demo
    # may have written, so that an interrupted replacement is still ours
    # and is cleaned up by the next call.
    _dump_marker(root, dict(spec=None, counts=None,
                            files=sorted(set(old_files) | set(new_files))))
    folders = set()
    for rel in old_files:
        path = osp.join(root, *rel.split('/'))
        if osp.isfile(path) or osp.islink(path):
            os.remove(path)
        parts = rel.split('/')[:-1]
        folders.update(tuple(parts[:i]) for i in range(1, len(parts) + 1))
    for parts in sorted(folders, key=len, reverse=True):  # deepest first
        path = osp.join(root, *parts)
        if osp.isdir(path) and not os.listdir(path):
            os.rmdir(path)
    for rel in new_files:
        dst = osp.join(root, *rel.split('/'))
        os.makedirs(osp.dirname(dst), exist_ok=True)
        os.replace(osp.join(tmp, *rel.split('/')), dst)
    os.replace(osp.join(tmp, MARKER), osp.join(root, MARKER))
    shutil.rmtree(tmp, ignore_errors=True)


def _write_demo(root: str, spec: dict,
                write: Callable[[str], dict]) -> dict:
    """Write a demo dataset into ``root`` once; return its counts.

    ``write(tmp)`` fills the fresh directory ``tmp`` and returns the counts.
    It runs in a temporary sibling of ``root``, and the marker file lists
    every file written, so an interrupted or failing run never leaves a
    half-written dataset that looks complete. A second call with the same
    ``spec`` writes nothing. A demo of ours with other settings is
    replaced, and of it only the files its marker lists are removed: files
    someone else put into the folder stay.
    """
    old = _check_target(root)
    if old is not None and old.get('spec') == spec:
        return old['counts']
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.demo-', dir=parent)
    try:
        counts = write(tmp)
        files = _list_files(tmp)
        _dump_marker(tmp, dict(spec=spec, counts=counts, files=files))
        # mkdtemp makes the directory private (0o700); the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if old is not None:
            _replace_own_demo(root, old, tmp, files)
            return counts
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if osp.isdir(root):  # an empty directory we may replace
        os.rmdir(root)
    os.replace(tmp, root)
    return counts


def make_digits_classification(root: str,
                               img_size: int = 32,
                               val_ratio: float = 0.2,
                               seed: int = 0) -> dict:
    """Write the digits demo in ImageNet folder layout (idempotent).

    Args:
        root (str): Output directory; created if missing. An existing
            directory that this function did not write is never modified.
        img_size (int): Side of the square RGB images. Defaults to 32.
        val_ratio (float): Fraction of each class used for ``val``.
        seed (int): Seed of the per-class split.

    Returns:
        dict: Counts of the written split, e.g. ``{'train': 1440, ...}``.
    """
    if not 0 < val_ratio < 1:
        raise ValueError(f'val_ratio must be in (0, 1), got {val_ratio}.')
    from sklearn.datasets import load_digits

    spec = dict(kind='digits', img_size=img_size, val_ratio=val_ratio,
                seed=seed)

    def write(tmp: str) -> dict:
        digits = load_digits()
        rng = np.random.default_rng(seed)
        counts = {'train': 0, 'val': 0}
        for label in range(10):
            idx = np.flatnonzero(digits.target == label)
            rng.shuffle(idx)
            num_val = int(round(len(idx) * val_ratio))
            for split, part in (('val', idx[:num_val]),
                                ('train', idx[num_val:])):
                out_dir = osp.join(tmp, split, str(label))
                os.makedirs(out_dir, exist_ok=True)
                for i in part:
                    gray = (digits.images[i] / 16.0 * 255).astype(np.uint8)
                    img = Image.fromarray(gray).resize((img_size, img_size),
                                                       Image.BILINEAR)
                    img.convert('RGB').save(
                        osp.join(out_dir, f'{i:04d}.png'))
                counts[split] += len(part)
        return counts

    return _write_demo(root, spec, write)
