import json
import os
import os.path as osp
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from mmpvg.demo import (SHAPES_ADE_CLASSES, SHAPES_COCO_CLASSES,
                        make_shapes_ade, make_shapes_coco)
from mmpvg.demo import shapes as demo_shapes

SMALL = dict(num_train=8, num_val=4)
IMG = 256


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'shapes_coco')
    counts = make_shapes_coco(root, **SMALL)
    assert counts['train'] == 8 and counts['val'] == 4
    return root


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'shapes_ade')
    assert make_shapes_ade(root, **SMALL) == {'train': 8, 'val': 4}
    return root


def _shoelace(poly):
    x, y = np.asarray(poly[0::2]), np.asarray(poly[1::2])
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def test_coco_layout_and_annotations(coco_root):
    from pycocotools.coco import COCO
    assert sorted(os.listdir(osp.join(coco_root, 'annotations'))) == [
        'instances_train.json', 'instances_val.json'
    ]
    marker = json.load(open(osp.join(coco_root, '.mmpvg_demo.json')))
    cats_seen, per_image, overlaps = Counter(), [], 0
    for split, num in (('train', 8), ('val', 4)):
        coco = COCO(
            osp.join(coco_root, 'annotations', f'instances_{split}.json'))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())
                ] == list(SHAPES_COCO_CLASSES)
        assert len(coco.imgs) == num
        assert len(coco.anns) == marker['counts'][f'{split}_instances']
        for index, img_id in enumerate(sorted(coco.imgs)):
            info = coco.imgs[img_id]
            assert (info['width'], info['height']) == (IMG, IMG)
            img = np.asarray(
                Image.open(osp.join(coco_root, split, info['file_name'])))
            assert img.shape == (IMG, IMG, 3)
            # Redraw the scene to get the drawn pixels of every object.
            drawn, objects = demo_shapes._coco_scene(
                demo_shapes._image_rng(0, 'coco', split, index), IMG)
            # Only JPEG noise (4:2:0 chroma on a grainy image) differs.
            assert np.abs(img.astype(int) - drawn).mean() < 10
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert 1 <= len(anns) <= 6 and len(anns) == len(objects)
            per_image.append(len(anns))
            masks = []
            for ann, obj in zip(anns, objects):
                x, y, w, h = ann['bbox']
                assert ann['iscrowd'] == 0
                assert ann['category_id'] == obj['category_id']
                assert 0 <= x and 0 <= y and w > 0 and h > 0
                assert x + w <= IMG and y + h <= IMG
                polys = ann['segmentation']
                assert polys and all(
                    len(p) >= 6 and len(p) % 2 == 0 for p in polys)
                xs = np.concatenate([p[0::2] for p in polys])
                ys = np.concatenate([p[1::2] for p in polys])
                assert [xs.min(), ys.min(), xs.max(), ys.max()] == \
                    pytest.approx([x, y, x + w, y + h])
                assert ann['area'] > 0
                assert ann['area'] == pytest.approx(
                    sum(_shoelace(p) for p in polys))
                mask = coco.annToMask(ann).astype(bool)
                iou = (mask & obj['mask']).sum() / (mask | obj['mask']).sum()
                assert iou > 0.9
                masks.append(mask)
                cats_seen[ann['category_id']] += 1
            # Occlusion: visible parts never overlap; touching parts whose
            # boxes intersect are overlapping shapes.
            for i in range(len(masks)):
                for j in range(i + 1, len(masks)):
                    assert not (masks[i] & masks[j]).any()
                    grown = np.zeros_like(masks[i])
                    ys_, xs_ = np.nonzero(masks[i])
                    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                        grown[np.clip(ys_ + dy, 0, IMG - 1),
                              np.clip(xs_ + dx, 0, IMG - 1)] = True
                    overlaps += bool((grown & masks[j]).any())
    assert len(cats_seen) >= 4
    assert max(per_image) >= 4 and min(per_image) >= 1
    assert overlaps >= 2


def test_polygons_trace_pixels_exactly():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(2, 20, 2)
        mask = rng.random((h, w)) < 0.6
        polys, has_hole = demo_shapes._mask_polygons(mask)
        if has_hole or not mask.any():
            continue  # the generator never annotates holed masks
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
        assert (mask_utils.decode(rle).astype(bool) == mask).all()
        assert sum(_shoelace(p) for p in polys) == mask.sum()


def test_ade_layout_and_labels(ade_root):
    num_classes = len(SHAPES_ADE_CLASSES)
    assert num_classes == 6
    hist = np.zeros(num_classes + 1)
    for folder, num in (('training', 8), ('validation', 4)):
        imgs = sorted(os.listdir(osp.join(ade_root, 'images', folder)))
        anns = sorted(os.listdir(osp.join(ade_root, 'annotations', folder)))
        assert len(imgs) == num and all(f.endswith('.jpg') for f in imgs)
        assert [f[:-4] for f in imgs] == [f[:-4] for f in anns]
        for ann in anns:
            label = Image.open(osp.join(ade_root, 'annotations', folder, ann))
            assert label.mode == 'L' and label.size == (IMG, IMG)
            label = np.asarray(label)
            assert label.max() <= num_classes
            hist += np.bincount(label.ravel(), minlength=num_classes + 1)
    frac = hist / hist.sum()
    assert 0.001 < frac[0] < 0.1  # thin unlabelled borders and wires
    assert frac[1] + frac[2] > 0.5  # sky and ground are most pixels
    assert (frac[3:] > 0).all()  # every shape class occurs


def _snapshot(root):
    return {
        osp.relpath(osp.join(d, f), root): os.stat(osp.join(d, f)).st_mtime_ns
        for d, _, files in os.walk(root)
        for f in files
    }


@pytest.mark.parametrize('make', [make_shapes_coco, make_shapes_ade])
def test_idempotent_and_rebuilds_own_demo(tmp_path, make):
    root = str(tmp_path / 'demo')
    tiny = dict(num_train=2, num_val=1, img_size=64)
    counts = make(root, **tiny)
    assert counts['train'] == 2 and counts['val'] == 1
    before = _snapshot(root)
    assert make(root, **tiny) == counts
    assert _snapshot(root) == before  # second call wrote nothing

    counts = make(root, **dict(tiny, num_val=3))  # other settings: rebuilt
    assert counts['val'] == 3
    assert sorted(os.listdir(tmp_path)) == ['demo']  # no temp dirs left
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(root).st_mode & 0o777 == 0o777 & ~umask  # not private


@pytest.mark.parametrize('make', [make_shapes_coco, make_shapes_ade])
def test_refuses_foreign_directory(tmp_path, make):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'precious.txt').write_text('user data')
    with pytest.raises(FileExistsError, match='refusing to overwrite'):
        make(str(root), num_train=1, num_val=1, img_size=64)
    assert sorted(os.listdir(root)) == ['precious.txt']
    assert (root / 'precious.txt').read_text() == 'user data'
    assert sorted(os.listdir(tmp_path)) == ['mine']


def test_failed_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def broken(rng, size):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError('interrupted')
        return original(rng, size)

    original = demo_shapes._coco_scene
    monkeypatch.setattr(demo_shapes, '_coco_scene', broken)
    with pytest.raises(RuntimeError, match='interrupted'):
        make_shapes_coco(str(tmp_path / 'demo'),
                         num_train=3,
                         num_val=1,
                         img_size=64)
    assert os.listdir(tmp_path) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_train'):
        make_shapes_coco(str(tmp_path / 'x'), num_train=0)
    with pytest.raises(ValueError, match='img_size'):
        make_shapes_ade(str(tmp_path / 'x'), img_size=8)
    assert os.listdir(tmp_path) == []
