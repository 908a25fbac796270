"""The demo-data writer removes only the files it wrote (its manifest)."""
import json
import os
import os.path as osp

import pytest

from mmpvg.demo import make_digits_classification
from mmpvg.demo.digits import MARKER, _list_files


def _marker(root):
    with open(osp.join(root, MARKER)) as f:
        return json.load(f)


def test_manifest_lists_exactly_what_was_written(tmp_path):
    root = str(tmp_path / 'digits')
    make_digits_classification(root, img_size=8)
    manifest = _marker(root)['files']
    assert manifest == sorted(set(_list_files(root)) - {MARKER})
    assert len(manifest) == 1797


def test_new_settings_keep_a_foreign_file(tmp_path):
    root = tmp_path / 'digits'
    make_digits_classification(str(root), img_size=8)
    # a user's files in the demo folder, at the top and next to the images
    (root / 'notes.txt').write_text('my notes')
    (root / 'train' / '3' / 'mine.png').write_bytes(b'not ours')
    (root / 'extra').mkdir()
    (root / 'extra' / 'keep.txt').write_text('keep')

    make_digits_classification(str(root), img_size=12)  # other spec
    assert (root / 'notes.txt').read_text() == 'my notes'
    assert (root / 'train' / '3' / 'mine.png').read_bytes() == b'not ours'
    assert (root / 'extra' / 'keep.txt').read_text() == 'keep'
    marker = _marker(str(root))
    assert marker['spec']['img_size'] == 12
    foreign = {'notes.txt', 'train/3/mine.png', 'extra/keep.txt'}
    assert set(_list_files(str(root))) == \
        set(marker['files']) | foreign | {MARKER}
    from PIL import Image
    first = osp.join(root, marker['files'][0])
    assert Image.open(first).size == (12, 12)
    # no temporary folder left next to it
    assert sorted(os.listdir(tmp_path)) == ['digits']


def test_interrupted_replacement_is_finished_next_time(tmp_path):
    root = tmp_path / 'digits'
    make_digits_classification(str(root), img_size=8)
    (root / 'notes.txt').write_text('my notes')
    # what an interrupted replacement leaves: the marker of the union, a
    # stray file of ours that the manifest lists
    marker = _marker(str(root))
    marker.update(spec=None, counts=None,
                  files=marker['files'] + ['train/0/stray.png'])
    (root / 'train' / '0' / 'stray.png').write_bytes(b'ours')
    (root / MARKER).write_text(json.dumps(marker))
    counts = make_digits_classification(str(root), img_size=8)
    assert counts == {'train': 1438, 'val': 359}
    assert not (root / 'train' / '0' / 'stray.png').exists()
    assert (root / 'notes.txt').read_text() == 'my notes'


def test_refuses_a_clash_or_an_unlisted_old_demo(tmp_path):
    root = tmp_path / 'digits'
    make_digits_classification(str(root), img_size=8)
    marker = _marker(str(root))
    # a user's file where the new demo writes one of its own
    first = marker['files'][0]
    os.remove(osp.join(root, first))
    marker['files'] = marker['files'][1:]
    (root / MARKER).write_text(json.dumps(marker))
    (root / first).write_bytes(b'users')
    before = _list_files(str(root))
    with pytest.raises(FileExistsError, match=f'{first} is not of mmpvg'):
        make_digits_classification(str(root), img_size=12)
    assert _list_files(str(root)) == before
    assert (root / first).read_bytes() == b'users'

    # a marker of an older mmpvg: no list of files, nothing removed
    del marker['files']
    (root / MARKER).write_text(json.dumps(marker))
    with pytest.raises(FileExistsError, match='did not record which files'):
        make_digits_classification(str(root), img_size=12)
    assert _list_files(str(root)) == before
    assert sorted(os.listdir(tmp_path)) == ['digits']
