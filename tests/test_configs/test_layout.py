"""The layout and names of configs/ (configs/README.md): fragments and
recipes under _base_, only leaves in the task folders, one naming scheme,
one weight-decay rule."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from config_convention import (CONFIGS, TASK_DIRS, backbone_field, chain,
                               is_ablation,
                               leaves, mode_of_name, model_of_name,
                               own_settings, scope_of)

LEAVES = leaves()
NAME = {
    # {backbone}_{gpus}xb{batch}[-{schedule}]_{dataset}
    'mmpretrain': r'[a-z0-9-]+_\d+xb\d+(-[a-z0-9-]+)?_[a-z0-9-]+',
    # {algorithm}_{backbone}_{neck}_{gpus}xb{batch}-{schedule}_{dataset}
    'mmdet': r'mask-rcnn_[a-z0-9-]+_[a-z]+_\d+xb\d+-[a-z0-9-]+_[a-z0-9-]+',
    # {algorithm}_{backbone}[_{neck}]_{gpus}xb{batch}-{schedule}_{dataset}
    'mmseg': r'upernet_[a-z0-9-]+(_[a-z]+)?_\d+xb\d+-[a-z0-9-]+_[a-z0-9-]+',
}


def test_task_folders_hold_only_leaves():
    for task in TASK_DIRS:
        for path in glob.glob(osp.join(CONFIGS, task, '**'), recursive=True):
            assert '_base_' not in osp.basename(path), path
    # the ViT family's leaves; the other families test theirs
    assert len([p for p in LEAVES if backbone_field(p).startswith(
        ('deit-', 'vit-'))]) == 49 + 3  # + run_demo.sh's three
    bases = glob.glob(osp.join(CONFIGS, '_base_', '*', '*.py'))
    assert {osp.basename(osp.dirname(p)) for p in bases} == {
        'models', 'datasets', 'schedules'}


@pytest.mark.parametrize('rel', LEAVES)
def test_name_follows_the_scheme(rel):
    name = osp.basename(rel)[:-len('.py')]
    assert re.fullmatch(NAME[scope_of(rel)], name), name
    mode_of_name(rel)  # one mode, at its place
    if is_ablation(rel):
        # an ablation is its mode's leaf plus one switch
        mode = mode_of_name(rel)
        arch = name.split('-' + mode + '-')[0]
        base, = own_settings(osp.join(CONFIGS, rel))['bases']
        assert base == f'../{arch}-{mode}_{name.split("_", 1)[1]}.py'
    else:
        # model fragment, recipe (dataset, schedule), nothing else
        bases = own_settings(osp.join(CONFIGS, rel))['bases']
        assert [osp.dirname(b) for b in bases] == [
            '../_base_/models', '../_base_/datasets', '../_base_/schedules']
        assert bases[0] == f'../_base_/models/{model_of_name(rel)}.py'


def test_every_fragment_and_recipe_is_used():
    used = {osp.normpath(f) for rel in LEAVES
            for f in chain(osp.join(CONFIGS, rel))}
    for path in glob.glob(osp.join(CONFIGS, '_base_', '*', '*.py')):
        assert osp.normpath(path) in used, path


@pytest.mark.parametrize('rel', LEAVES)
def test_one_weight_decay_rule(rel):
    pw = Config.fromfile(osp.join(CONFIGS, rel)).optim_wrapper.paramwise_cfg
    assert pw.norm_decay_mult == pw.bias_decay_mult == 0.0
    assert pw.flat_decay_mult == 0.0  # every 1-D parameter
    for key in ('.pos_embed', '.cls_token', '.level_embed'):
        assert pw.custom_keys[key] == dict(decay_mult=0.0), key
