"""DemoShapesADE20KDataset: the ADE20K-layout shapes demo in mmseg.

The data are written by the generator (mmpvg.demo.make_shapes_ade); the
class must take its classes and palette from the generator, default to the
ADE20K suffixes and reduce_zero_label=True, and read a sample.
"""
import pytest

from mmpvg.demo import SHAPES_ADE_CLASSES, SHAPES_ADE_PALETTE, make_shapes_ade

IMG = 256
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'shapes_ade')
    make_shapes_ade(root, num_train=8, num_val=4)
    return root


def _build(root, split='training'):
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS

    import mmpvg.datasets.demo_shapes_ade  # noqa: F401 registers the class
    cfg = dict(type='DemoShapesADE20KDataset', data_root=root,
               data_prefix=dict(img_path=f'images/{split}',
                                seg_map_path=f'annotations/{split}'),
               pipeline=PIPELINE)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(cfg)


def test_registered_in_mmseg():
    from mmseg.datasets import BaseSegDataset
    from mmseg.registry import DATASETS

    from mmpvg.datasets.demo_shapes_ade import DemoShapesADE20KDataset
    assert DATASETS.get('DemoShapesADE20KDataset') is DemoShapesADE20KDataset
    assert issubclass(DemoShapesADE20KDataset, BaseSegDataset)


def test_defaults_and_metainfo_come_from_the_generator(ade_root):
    ds = _build(ade_root)
    assert ds.metainfo['classes'] == SHAPES_ADE_CLASSES
    assert [list(c) for c in ds.metainfo['palette']] == [
        list(c) for c in SHAPES_ADE_PALETTE]
    assert ds.img_suffix == '.jpg' and ds.seg_map_suffix == '.png'
    assert ds.reduce_zero_label
    assert len(ds) == 8
    assert len(_build(ade_root, 'validation')) == 4


def test_reads_a_sample(ade_root):
    ds = _build(ade_root)
    values = set()
    for i in range(3):
        sample = ds[i]
        assert sample['inputs'].shape == (3, IMG, IMG)
        seg = sample['data_samples'].gt_sem_seg.data
        assert seg.shape == (1, IMG, IMG)
        values |= set(seg.unique().tolist())
    assert values <= set(range(len(SHAPES_ADE_CLASSES))) | {255}
    assert {0, 1, 255} <= values  # sky, ground and the ignored borders


def test_out_of_range_labels_are_refused(ade_root, tmp_path):
    """IoUMetric drops label values >= num_classes without a word (issue
    11); the dataset names the file and the values."""
    import shutil

    import numpy as np
    from PIL import Image
    root = tmp_path / 'ade'
    shutil.copytree(ade_root, root)
    seg_dir = root / 'annotations' / 'validation'
    first = sorted(seg_dir.iterdir())[0]
    label = np.array(Image.open(first))
    label[:4, :4] = 9  # 8 after reduce_zero_label; the demo has 6 classes
    Image.fromarray(label).save(first)
    ds = _build(str(root), 'validation')
    with pytest.raises(ValueError, match=rf'{first.name}: label values \[8\]'
                       r' \(after reduce_zero_label=True\) are outside the '
                       r'6 classes; accepted: 0\.\.5 and the ignore index '
                       r'255'):
        ds[0]
    ds[1]  # the untouched files still load
