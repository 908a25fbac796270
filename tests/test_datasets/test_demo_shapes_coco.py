"""DemoShapesCocoDataset: the COCO shapes demo as a registered mmdet dataset.

The data are written by the generator (mmpvg.demo.make_shapes_coco); the
class must take its classes and palette from the generator and read the
written files through mmdet's usual pipeline.
"""
import pytest

from mmpvg.demo import (SHAPES_COCO_CLASSES, SHAPES_COCO_PALETTE,
                        make_shapes_coco)

IMG = 256
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs'),
]


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'shapes_coco')
    make_shapes_coco(root, num_train=8, num_val=4)
    return root


def _build(root, split='train', **kwargs):
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope

    import mmpvg.datasets.demo_shapes_coco  # noqa: F401 registers the class
    cfg = dict(type='DemoShapesCocoDataset', data_root=root,
               ann_file=f'annotations/instances_{split}.json',
               data_prefix=dict(img=f'{split}/'), pipeline=PIPELINE,
               **kwargs)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(cfg)


def test_registered_in_mmdet_only_on_import():
    from mmdet.datasets import CocoDataset
    from mmdet.registry import DATASETS

    from mmpvg.datasets.demo_shapes_coco import DemoShapesCocoDataset
    assert DATASETS.get('DemoShapesCocoDataset') is DemoShapesCocoDataset
    assert issubclass(DemoShapesCocoDataset, CocoDataset)


def test_metainfo_comes_from_the_generator(coco_root):
    ds = _build(coco_root)
    assert ds.metainfo['classes'] == SHAPES_COCO_CLASSES
    assert [tuple(c) for c in ds.metainfo['palette']] == [
        tuple(c) for c in SHAPES_COCO_PALETTE]
    # the category ids of the written annotation file, in class order
    assert ds.cat_ids == [1, 2, 3, 4, 5]


def test_reads_a_sample(coco_root):
    ds = _build(coco_root)
    assert len(ds) == 8
    for i in (0, 5):
        sample = ds[i]
        gt = sample['data_samples'].gt_instances
        assert sample['inputs'].shape == (3, IMG, IMG)
        assert len(gt) >= 1
        assert gt.masks.masks.shape == (len(gt), IMG, IMG)
        assert gt.masks.masks.sum((1, 2)).min() > 0
        boxes = gt.bboxes.tensor
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert boxes.min() >= 0 and boxes.max() <= IMG
        assert set(gt.labels.tolist()) <= set(range(len(SHAPES_COCO_CLASSES)))
    val = _build(coco_root, 'val', test_mode=True)
    assert len(val) == 4


def test_a_file_without_annotations_is_refused(coco_root):
    """It used to give AP -1.000 and exit 0 (issue 11)."""
    import json
    import os.path as osp
    src = osp.join(coco_root, 'annotations', 'instances_val.json')
    coco = json.load(open(src))
    coco['annotations'] = []
    empty = osp.join(coco_root, 'annotations', 'instances_empty.json')
    with open(empty, 'w') as f:
        json.dump(coco, f)
    with pytest.raises(ValueError, match=r'instances_empty\.json has 4 '
                       r'images but no annotation of the classes .* \(AP '
                       r'would be -1\)'):
        _build(coco_root, 'empty')
