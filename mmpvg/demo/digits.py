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


def _check_target(root: str, spec: dict) -> bool:
    """True if ``root`` already holds this demo; refuse to touch other data.

    False means ``root`` is missing, an empty directory, or an mmpvg demo
    written with other settings: all three may be replaced by
    :func:`_write_demo`. Anything else raises :class:`FileExistsError`.
    """
    marker = osp.join(root, MARKER)
    if osp.isfile(marker):
        with open(marker) as f:
            return json.load(f).get('spec') == spec
    if osp.exists(root) and (not osp.isdir(root) or os.listdir(root)):
        raise FileExistsError(
            f'{root!r} exists and was not written by mmpvg\'s demo generator '
            f'(no {MARKER}); refusing to overwrite it. Choose another '
            'directory or remove it yourself.')
    return False


def _write_demo(root: str, spec: dict,
                write: Callable[[str], dict]) -> dict:
    """Write a demo dataset into ``root`` once; return its counts.

    ``write(tmp)`` fills the fresh directory ``tmp`` and returns the counts.
    It runs in a temporary sibling of ``root`` that replaces ``root`` only
    when complete (marker file included), so an interrupted or failing run
    never leaves a half-written dataset that looks complete, and a stale
    demo of ours is only removed once its replacement is ready. A second
    call with the same ``spec`` writes nothing.
    """
    if _check_target(root, spec):
        with open(osp.join(root, MARKER)) as f:
            return json.load(f)['counts']
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.demo-', dir=parent)
    try:
        counts = write(tmp)
        with open(osp.join(tmp, MARKER), 'w') as f:
            json.dump(dict(spec=spec, counts=counts), f)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # mkdtemp makes the directory private (0o700); give it the usual mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    if osp.isfile(osp.join(root, MARKER)):
        # Our own demo with other settings: move it aside, then delete it.
        trash = tempfile.mkdtemp(prefix='.demo-old-', dir=parent)
        os.replace(root, osp.join(trash, 'old'))
        os.replace(tmp, root)
        shutil.rmtree(trash, ignore_errors=True)
    else:
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
