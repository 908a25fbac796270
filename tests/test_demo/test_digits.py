import os
import os.path as osp

import pytest
from PIL import Image

from mmpvg.demo import make_digits_classification


def test_digits_layout_counts_and_idempotence(tmp_path):
    root = str(tmp_path / 'digits')
    counts = make_digits_classification(root, img_size=16)
    assert counts == {'train': 1438, 'val': 359}  # all 1797 sklearn digits
    for split, n in counts.items():
        classes = sorted(os.listdir(osp.join(root, split)))
        assert classes == [str(i) for i in range(10)]
        files = [f for c in classes
                 for f in os.listdir(osp.join(root, split, c))]
        assert len(files) == n
    img = Image.open(osp.join(root, 'train', '3',
                              os.listdir(osp.join(root, 'train', '3'))[0]))
    assert img.size == (16, 16) and img.mode == 'RGB'
    # train and val are disjoint
    train = {f for c in range(10)
             for f in os.listdir(osp.join(root, 'train', str(c)))}
    val = {f for c in range(10)
           for f in os.listdir(osp.join(root, 'val', str(c)))}
    assert not train & val

    marker = osp.join(root, '.mmpvg_demo.json')
    stamp = os.stat(marker).st_mtime_ns
    assert make_digits_classification(root, img_size=16) == counts
    assert os.stat(marker).st_mtime_ns == stamp  # second call wrote nothing

    # other settings: our own demo is rebuilt
    make_digits_classification(root, img_size=24)
    img = Image.open(osp.join(root, 'val', '0',
                              os.listdir(osp.join(root, 'val', '0'))[0]))
    assert img.size == (24, 24)


def test_refuses_to_touch_foreign_directories(tmp_path):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'precious.txt').write_text('user data')
    with pytest.raises(FileExistsError, match='refusing to overwrite'):
        make_digits_classification(str(root))
    assert (root / 'precious.txt').read_text() == 'user data'
    assert sorted(os.listdir(root)) == ['precious.txt']


def test_bad_val_ratio(tmp_path):
    with pytest.raises(ValueError, match='val_ratio'):
        make_digits_classification(str(tmp_path / 'x'), val_ratio=1.5)
