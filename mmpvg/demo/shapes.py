# Copyright (c) mmpvg contributors. All rights reserved.
"""Synthetic "shapes" demos for detection and semantic segmentation.

Both are drawn locally (no download) and written in the layouts that
mmdet's ``CocoDataset`` and mmseg's ``BaseSegDataset`` read:

* :func:`make_shapes_coco`: instance segmentation in COCO format. Each image
  shows 1-6 filled shapes (:data:`SHAPES_COCO_CLASSES`) of random colour,
  size, rotation and position on a cluttered, noisy background; objects may
  partly occlude each other.
* :func:`make_shapes_ade`: semantic segmentation in ADE20K layout, with a
  sky/ground scene and shapes in front of it (:data:`SHAPES_ADE_CLASSES`).

A shape's colour says nothing about its class, and backgrounds carry
low-frequency colour fields, grain and thin clutter lines, so a model has to
learn outlines, not colours. Every image is drawn from its own random
generator seeded by ``(seed, dataset, split, index)``, so a dataset is
reproducible image by image.

Pixel conventions follow COCO: pixel ``(x, y)`` covers the unit square
``[x, x + 1) x [y, y + 1)``. Instance polygons trace the pixel edges of the
drawn visible region, so rasterising them with pycocotools gives back the
drawn pixels exactly, their area equals the pixel count and their extent is
the box.
"""
import json
import os
import os.path as osp
from typing import List, Tuple

import cv2
import numpy as np
from PIL import Image

from .digits import _write_demo

#: Category names of :func:`make_shapes_coco`; category ``id`` is index + 1.
SHAPES_COCO_CLASSES = ('circle', 'ellipse', 'square', 'triangle', 'star')
#: Display colours (RGB) for ``metainfo=dict(classes=..., palette=...)``.
SHAPES_COCO_PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75),
                       (255, 180, 0), (145, 30, 180)]
SHAPES_COCO_METAINFO = dict(classes=SHAPES_COCO_CLASSES,
                            palette=SHAPES_COCO_PALETTE)

#: Class names of :func:`make_shapes_ade` for label values 1..6 (value 0 is
#: "other/unlabelled", ignored with ``reduce_zero_label=True``, which maps
#: value ``k`` to train id ``k - 1``).
SHAPES_ADE_CLASSES = ('sky', 'ground', 'circle', 'square', 'triangle', 'star')
SHAPES_ADE_PALETTE = [[70, 130, 180], [140, 110, 60], [220, 20, 60],
                      [60, 180, 75], [255, 180, 0], [145, 30, 180]]
SHAPES_ADE_METAINFO = dict(classes=SHAPES_ADE_CLASSES,
                           palette=SHAPES_ADE_PALETTE)

# Bump when the drawing changes, so that existing demos get rebuilt.
_VERSION = 1
_KIND_CODE = {'coco': 1, 'ade': 2}
_SPLIT_CODE = {'train': 0, 'val': 1}
# An occluding shape is only placed if every earlier object keeps at least
# this fraction of its pixels (and gets no hole); see _coco_scene.
_MIN_VISIBLE = 0.6


def _image_rng(seed: int, kind: str, split: str,
               index: int) -> np.random.Generator:
    """The random generator of one image (``kind`` is 'coco' or 'ade')."""
    return np.random.default_rng(
        [seed, _KIND_CODE[kind], _SPLIT_CODE[split], index])


# ----------------------------------------------------------------- geometry
def _shape_polygon(name: str, rng: np.random.Generator, cx: float, cy: float,
                   r: float) -> np.ndarray:
    """Vertices (N, 2) of a shape of circumradius ``r`` centred at cx, cy."""
    rot = rng.uniform(0, 2 * np.pi)
    if name in ('circle', 'ellipse'):
        n = int(np.clip(2 * np.pi * r / 2, 24, 96))
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        minor = rng.uniform(0.4, 0.65) if name == 'ellipse' else 1.0
        pts = np.stack([np.cos(t), minor * np.sin(t)], 1)
    elif name == 'square':
        t = np.pi / 4 + np.arange(4) * np.pi / 2
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif name == 'triangle':
        t = np.arange(3) * 2 * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif name == 'star':
        t = np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([rad * np.cos(t), rad * np.sin(t)], 1)
    else:
        raise ValueError(f'unknown shape {name!r}')
    c, s = np.cos(rot), np.sin(rot)
    pts = pts @ np.array([[c, s], [-s, c]])
    return pts * r + np.array([cx, cy])


def _fill_polygon(pts: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies in the polygon."""
    mask = np.zeros((size, size), np.uint8)
    shift = 4  # sub-pixel vertex precision; cv2 puts pixel centres on ints
    fixed = np.round((pts - 0.5) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def _mask_polygons(mask: np.ndarray) -> Tuple[List[List[float]], bool]:
    """Polygons along the pixel edges of ``mask``; also whether it has holes.

    The mask is upsampled 2x, so that the contour of the fine mask runs a
    quarter pixel inside the true pixel edges: a fine coordinate ``q`` that
    is even lies on the low edge of coarse pixel ``q / 2`` and an odd one on
    the high edge, so ``ceil(q / 2)`` is the exact edge coordinate. Pieces
    that touch only at a corner give one polygon pinched at that corner.
    """
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return [], False
    x0, y0 = xs.min() - 1, ys.min() - 1  # one pixel of padding
    crop = np.zeros((ys.max() - y0 + 2, xs.max() - x0 + 2), np.uint8)
    crop[ys - y0, xs - x0] = 1
    fine = np.kron(crop, np.ones((2, 2), np.uint8))
    contours, hierarchy = cv2.findContours(fine, cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
    has_hole = bool((hierarchy[0, :, 3] >= 0).any())
    polygons = []
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0]):
        if parent >= 0:
            continue
        pts = (contour.reshape(-1, 2) + 1) // 2 + np.array([x0, y0])
        polygons.append(_simplify(pts).astype(float).ravel().tolist())
    return polygons, has_hole


def _simplify(pts: np.ndarray) -> np.ndarray:
    """Drop repeated and collinear vertices of a closed integer polygon."""
    keep = np.any(pts != np.roll(pts, 1, 0), axis=1)
    pts = pts[keep] if keep.any() else pts[:1]
    while len(pts) > 3:
        d_in = pts - np.roll(pts, 1, 0)
        d_out = np.roll(pts, -1, 0) - pts
        cross = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
        dot = (d_in * d_out).sum(1)
        straight = (cross == 0) & (dot > 0)
        if not straight.any():
            break
        # Remove one vertex of each straight run per pass (never two
        # neighbours at once, so no corner is lost).
        drop = straight & ~np.roll(straight, 1)
        pts = pts[~drop]
    return pts


def _polygon_area(poly: List[float]) -> float:
    """Shoelace area of a flat ``[x0, y0, x1, y1, ...]`` polygon."""
    x, y = np.asarray(poly[0::2]), np.asarray(poly[1::2])
    twice_area = np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))
    return abs(float(twice_area)) / 2


# --------------------------------------------------------------- appearance
def _smooth_noise(rng: np.random.Generator,
                  size: int,
                  cells: int,
                  channels: int = 3) -> np.ndarray:
    """Zero-mean noise with about ``cells`` blobs per side, in [-1, 1]."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1, channels))
    out = cv2.resize(grid.astype(np.float32), (size, size),
                     interpolation=cv2.INTER_CUBIC)
    return np.clip(out, -1, 1).reshape(size, size, channels)


def _clutter_lines(rng: np.random.Generator,
                   img: np.ndarray,
                   label: np.ndarray = None,
                   count: int = None) -> None:
    """Draw thin random lines (unlabelled clutter) in place."""
    size = img.shape[0]
    count = rng.integers(0, 5) if count is None else count
    for _ in range(count):
        p, q = rng.uniform(0, size, (2, 2)).astype(int)
        colour = rng.uniform(0, 255, 3).tolist()
        width = int(rng.integers(1, 3))
        cv2.line(img, tuple(map(int, p)), tuple(map(int, q)), colour, width)
        if label is not None:
            cv2.line(label, tuple(map(int, p)), tuple(map(int, q)), 0, width)


def _textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A float32 RGB background: colour field, blobs, grain and clutter."""
    base = rng.uniform(40, 215, 3)
    img = (base + 50 * _smooth_noise(rng, size, int(rng.integers(2, 5))) +
           25 * _smooth_noise(rng, size, int(rng.integers(8, 24))) +
           rng.normal(0, 10, (size, size, 3)))
    img = np.ascontiguousarray(img, dtype=np.float32)
    _clutter_lines(rng, img)
    return img


def _object_colour(rng: np.random.Generator,
                   region: np.ndarray,
                   min_dist: float = 70.) -> np.ndarray:
    """A random colour that stands out from the mean colour of ``region``."""
    ref = region.reshape(-1, 3).mean(0)
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if np.linalg.norm(colour - ref) >= min_dist:
            break
    return colour


def _paint(rng: np.random.Generator, img: np.ndarray,
           mask: np.ndarray) -> None:
    """Paint a shaded, slightly noisy random colour into ``img[mask]``."""
    colour = _object_colour(rng, img[mask])
    ys, xs = np.nonzero(mask)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-6
    span = max(np.ptp(xs), np.ptp(ys), 1)
    shade = ((xs - xs.mean()) * direction[0] +
             (ys - ys.mean()) * direction[1]) / span
    value = (colour + 40 * shade[:, None] + rng.normal(0, 6, (len(xs), 3)))
    img[ys, xs] = value


def _random_placement(rng: np.random.Generator, size: int,
                      centres: List[Tuple[float, float, float]]):
    """Centre and circumradius of a new shape, fully inside the image.

    Radii are log-uniform in [3.5%, 25%] of the side (about 9-64 px at 256),
    so small objects are common and a few are COCO "large". About a third
    of the shapes are put next to an earlier one to create partial overlaps.
    """
    r_min, r_max = max(4.0, 0.035 * size), max(6.0, 0.25 * size)
    r = float(np.exp(rng.uniform(np.log(r_min), np.log(r_max))))
    if centres and rng.random() < 0.35:
        cx0, cy0, r0 = centres[rng.integers(len(centres))]
        angle = rng.uniform(0, 2 * np.pi)
        dist = (r + r0) * rng.uniform(0.5, 1.0)
        cx, cy = cx0 + dist * np.cos(angle), cy0 + dist * np.sin(angle)
    else:
        cx, cy = rng.uniform(r, size - r, 2)
    cx, cy = np.clip([cx, cy], r, size - r)
    return float(cx), float(cy), r


# ------------------------------------------------------------------ scenes
def _coco_scene(rng: np.random.Generator, size: int):
    """Draw one detection image.

    Shapes are placed one after another, later ones in front. A placement is
    retried if it would leave an earlier object with less than 60% of its
    pixels visible or cut a hole into it, so every object stays recognisable
    and its visible part is one or more hole-free pieces. Objects are never
    dropped after they are placed; their annotations describe exactly their
    visible pixels.

    Returns:
        tuple: ``(img, objects)``: the uint8 RGB image and, in drawing order,
        dicts with ``category_id`` and ``mask`` (bool, visible pixels).
    """
    img = _textured_background(rng, size)
    cats, fulls, visibles, centres = [], [], [], []
    for _ in range(int(rng.integers(1, 7))):
        for _attempt in range(30):
            cat = int(rng.integers(len(SHAPES_COCO_CLASSES)))
            cx, cy, r = _random_placement(rng, size, centres)
            full = _fill_polygon(
                _shape_polygon(SHAPES_COCO_CLASSES[cat], rng, cx, cy, r), size)
            if full.sum() < 16:
                continue
            new_vis = [vis & ~full for vis in visibles]
            if all(nv.sum() >= _MIN_VISIBLE * f.sum()
                   and not (nv.sum() < vis.sum() and _mask_polygons(nv)[1])
                   for nv, vis, f in zip(new_vis, visibles, fulls)):
                break
        else:
            continue  # no acceptable place for another shape
        visibles = new_vis + [full]
        fulls.append(full)
        cats.append(cat)
        centres.append((cx, cy, r))
        _paint(rng, img, full)
    img += rng.normal(0, 4, img.shape)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    objects = [dict(category_id=c + 1, mask=m) for c, m in zip(cats, visibles)]
    return img, objects


def _ade_scene(rng: np.random.Generator, size: int):
    """Draw one segmentation image and its label map.

    Sky (1) above a wavy horizon and ground (2) below, with different colour
    ranges and textures (smooth clouds vs. grain), then 1-8 shapes (3-6) in
    front, later ones covering earlier ones. Label 0 ("other") marks thin
    clutter wires and a one-pixel ring around every shape, like the
    unlabelled object boundaries of ADE20K.

    Returns:
        tuple: uint8 RGB image (H, W, 3) and uint8 label map (H, W).
    """
    xs = np.arange(size)
    horizon = (rng.uniform(0.3, 0.7) * size + rng.uniform(0, 0.08) * size *
               np.sin(2 * np.pi * rng.uniform(0.5, 2) * xs / size +
                      rng.uniform(0, 2 * np.pi)))
    sky_mask = np.arange(size)[:, None] < horizon[None, :]
    sky_top = rng.uniform([40, 80, 150], [170, 200, 255])
    sky_bottom = rng.uniform([150, 150, 150], [255, 230, 230])
    t = np.linspace(0, 1, size)[:, None, None]
    sky = ((1 - t) * sky_top + t * sky_bottom +
           40 * _smooth_noise(rng, size, int(rng.integers(3, 6))))
    ground_colour = rng.uniform([50, 50, 20], [170, 160, 90])
    ground = (ground_colour +
              30 * _smooth_noise(rng, size, int(rng.integers(4, 8))) +
              30 * _smooth_noise(rng, size, size // 4) +
              rng.normal(0, 14, (size, size, 3)))
    img = np.ascontiguousarray(np.where(sky_mask[..., None], sky, ground),
                               dtype=np.float32)
    label = np.where(sky_mask, 1, 2).astype(np.uint8)
    _clutter_lines(rng, img, label, count=int(rng.integers(0, 3)))

    shapes = SHAPES_ADE_CLASSES[2:]
    instances = np.zeros((size, size), np.uint8)
    centres = []
    for i in range(int(rng.integers(1, 9))):
        cat = int(rng.integers(len(shapes)))
        cx, cy, r = _random_placement(rng, size, centres)
        centres.append((cx, cy, r))
        full = _fill_polygon(_shape_polygon(shapes[cat], rng, cx, cy, r), size)
        if not full.any():
            continue
        _paint(rng, img, full)
        label[full] = cat + 3
        instances[full] = i + 1
    # One-pixel ring outside each visible shape (on the lower-id side where
    # two shapes touch).
    ring = cv2.dilate(instances, np.ones((3, 3), np.uint8)) != instances
    label[ring] = 0
    img += rng.normal(0, 4, img.shape)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img, label


# ------------------------------------------------------------------ writers
def _check_args(num_train: int, num_val: int, img_size: int) -> None:
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be >= 1, got '
                         f'{num_train} and {num_val}.')
    if img_size < 32:
        raise ValueError(f'img_size must be >= 32, got {img_size}.')


def make_shapes_coco(root: str,
                     num_train: int = 256,
                     num_val: int = 64,
                     img_size: int = 256,
                     seed: int = 0) -> dict:
    """Write the shapes instance-segmentation demo in COCO format.

    Layout: ``root/train/*.jpg``, ``root/val/*.jpg`` and
    ``root/annotations/instances_{train,val}.json`` with ``images``,
    ``annotations`` (polygon ``segmentation``, ``area``, ``bbox`` as
    ``[x, y, w, h]``, ``iscrowd`` 0) and ``categories``
    (:data:`SHAPES_COCO_CLASSES`, ids 1-5). Use it with mmdet's
    ``CocoDataset`` and ``metainfo=dict(classes=SHAPES_COCO_CLASSES)``.

    Each image holds 1-6 shapes (about 3.2 on average). Where shapes
    overlap, the later one is in front and the earlier one's annotation
    describes its visible part only (polygons, area and box); placements
    that would hide more than 40% of an earlier object or cut a hole into
    it are retried instead, so no annotation is of a mostly hidden object.

    The defaults suit a CPU demo: 256x256 images are 16x16 patches for a
    ViT with patch size 16, small enough for Mask R-CNN to run a training
    iteration on a CPU in about a second, yet the smallest shapes (about
    18 px across, COCO "small") are still a patch or two. 256 training
    images (a whole number of iterations for any power-of-two batch) are
    enough to learn the five outlines in a few minutes of training, and 64
    validation images (about 220 objects) give a stable mAP.

    Args:
        root (str): Output directory; created if missing. An existing
            directory that this function did not write is never modified.
        num_train (int): Training images. Defaults to 256.
        num_val (int): Validation images. Defaults to 64.
        img_size (int): Side of the square images. Defaults to 256.
        seed (int): Seed of the drawing. Defaults to 0.

    Returns:
        dict: Image and object counts, e.g. ``{'train': 256, 'val': 64,
        'train_instances': ..., 'val_instances': ...}``.
    """
    _check_args(num_train, num_val, img_size)
    spec = dict(kind='shapes_coco',
                version=_VERSION,
                num_train=num_train,
                num_val=num_val,
                img_size=img_size,
                seed=seed)

    def write(tmp: str) -> dict:
        os.makedirs(osp.join(tmp, 'annotations'))
        categories = [
            dict(id=i + 1, name=name, supercategory='shape')
            for i, name in enumerate(SHAPES_COCO_CLASSES)
        ]
        counts = {}
        for split, num in (('train', num_train), ('val', num_val)):
            os.makedirs(osp.join(tmp, split))
            images, annotations = [], []
            for index in range(num):
                img, objects = _coco_scene(
                    _image_rng(seed, 'coco', split, index), img_size)
                file_name = f'{index:06d}.jpg'
                Image.fromarray(img).save(osp.join(tmp, split, file_name),
                                          quality=92)
                image_id = index + 1
                images.append(
                    dict(id=image_id,
                         file_name=file_name,
                         width=img_size,
                         height=img_size))
                for obj in objects:
                    annotations.append(
                        _annotation(obj, image_id,
                                    len(annotations) + 1))
            with open(osp.join(tmp, 'annotations', f'instances_{split}.json'),
                      'w') as f:
                json.dump(dict(images=images,
                               annotations=annotations,
                               categories=categories),
                          f,
                          separators=(',', ':'))
            counts[split] = num
            counts[f'{split}_instances'] = len(annotations)
        return counts

    return _write_demo(root, spec, write)


def _annotation(obj: dict, image_id: int, ann_id: int) -> dict:
    """COCO annotation of a visible-object mask."""
    polygons, _ = _mask_polygons(obj['mask'])
    xs = np.concatenate([p[0::2] for p in polygons])
    ys = np.concatenate([p[1::2] for p in polygons])
    x0, y0 = float(xs.min()), float(ys.min())
    bbox = [x0, y0, float(xs.max()) - x0, float(ys.max()) - y0]
    return dict(id=ann_id,
                image_id=image_id,
                category_id=obj['category_id'],
                segmentation=polygons,
                area=sum(_polygon_area(p) for p in polygons),
                bbox=bbox,
                iscrowd=0)


def make_shapes_ade(root: str,
                    num_train: int = 256,
                    num_val: int = 64,
                    img_size: int = 256,
                    seed: int = 0) -> dict:
    """Write the shapes semantic-segmentation demo in ADE20K layout.

    Layout: ``root/images/{training,validation}/*.jpg`` and
    ``root/annotations/{training,validation}/*.png`` (8-bit single-channel
    labels, same stem as the image). As in ADE20K, label 0 is
    "other/unlabelled" (clutter wires and a one-pixel ring around each
    shape, a few percent of the pixels) and the classes are 1-6,
    :data:`SHAPES_ADE_CLASSES` = sky, ground, circle, square, triangle,
    star; sky and ground cover the rest of the image. Read it with mmseg's
    ``BaseSegDataset(img_suffix='.jpg', seg_map_suffix='.png',
    reduce_zero_label=True, metainfo=SHAPES_ADE_METAINFO)`` (mmseg's
    ``ADE20KDataset`` is fixed to the 150 ADE classes), which maps 0 to 255
    (ignored) and ``k`` to ``k - 1``.

    The defaults follow :func:`make_shapes_coco`: 256x256 images (16x16 ViT
    patches, fast UperNet iterations on a CPU), 256 training images for a
    few minutes of training and 64 validation images for a stable mIoU.

    Args:
        root (str): Output directory; created if missing. An existing
            directory that this function did not write is never modified.
        num_train (int): Training images. Defaults to 256.
        num_val (int): Validation images. Defaults to 64.
        img_size (int): Side of the square images. Defaults to 256.
        seed (int): Seed of the drawing. Defaults to 0.

    Returns:
        dict: Image counts, e.g. ``{'train': 256, 'val': 64}``.
    """
    _check_args(num_train, num_val, img_size)
    spec = dict(kind='shapes_ade',
                version=_VERSION,
                num_train=num_train,
                num_val=num_val,
                img_size=img_size,
                seed=seed)

    def write(tmp: str) -> dict:
        counts = {}
        for split, folder, num in (('train', 'training', num_train),
                                   ('val', 'validation', num_val)):
            img_dir = osp.join(tmp, 'images', folder)
            ann_dir = osp.join(tmp, 'annotations', folder)
            os.makedirs(img_dir)
            os.makedirs(ann_dir)
            for index in range(num):
                img, label = _ade_scene(_image_rng(seed, 'ade', split, index),
                                        img_size)
                stem = f'shapes_{split}_{index:06d}'
                Image.fromarray(img).save(osp.join(img_dir, stem + '.jpg'),
                                          quality=92)
                Image.fromarray(label).save(osp.join(ann_dir, stem + '.png'))
            counts[split] = num
        return counts

    return _write_demo(root, spec, write)
