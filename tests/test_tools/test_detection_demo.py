"""The detection demo through tools/train.py and tools/test.py.

A short training of the CPU demo's Mask R-CNN, evaluated with mmdet's
CocoMetric (pycocotools, bbox and segm), must clearly beat the same detector
before training. There is no pretrained classifier in a test session, so the
whole detector starts from scratch; to learn within a test's CPU budget it
trains on a few images and is evaluated on those same images (the README demo
fine-tunes from the demo classifier and evaluates on the held-out split).
"""
import os.path as osp
import re

import torch

from conftest import ROOT, run_tool

DEMO_CFG = 'configs/demo/mask-rcnn_mpvg-tiny-adapter_fpn_1xb4-4e_demo-shapes.py'
# Short schedule of this test (the README demo trains 4 epochs on 256 images)
IMAGES, EPOCHS, BATCH = 16, 20, 4


def _options(root, train=True):
    ann = f'{root}/annotations/instances_train.json'
    opts = ['model.backbone.init_cfg=None']
    for split in ('val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={root}',
                 f'{split}_dataloader.dataset.indices={IMAGES}',
                 f'{split}_dataloader.dataset.ann_file={ann}',
                 f'{split}_dataloader.dataset.data_prefix.img=train/',
                 f'{split}_evaluator.ann_file={ann}']
    if train:
        opts += [f'train_dataloader.dataset.data_root={root}',
                 f'train_dataloader.dataset.indices={IMAGES}',
                 f'train_dataloader.batch_size={BATCH}',
                 f'train_cfg.max_epochs={EPOCHS}',
                 f'train_cfg.val_interval={EPOCHS}',
                 'param_scheduler.0.end=16',
                 f'param_scheduler.1.end={EPOCHS}',
                 'optim_wrapper.optimizer.lr=2e-3',
                 f'default_hooks.checkpoint.interval={EPOCHS}']
    return ['--cfg-options'] + opts


def _coco_ap(log):
    aps = {}
    for kind in ('bbox', 'segm'):
        found = re.findall(rf'coco/{kind}_mAP: (-?[0-9.]+)', log)
        assert found, log[-3000:]
        aps[kind] = float(found[-1])
    return aps


def _save_untrained(path):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, DEMO_CFG))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)


def test_demo_train_then_test_beats_untrained(tmp_path, demo_shapes_coco):
    root = demo_shapes_coco
    untrained = str(tmp_path / 'untrained.pth')
    _save_untrained(untrained)
    proc = run_tool(['tools/test.py', DEMO_CFG, untrained, '--work-dir',
                     str(tmp_path / 'test0')] + _options(root, train=False))
    before = _coco_ap(proc.stdout + proc.stderr)

    work = str(tmp_path / 'work')
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', work] +
             _options(root))
    ckpt = osp.join(work, f'epoch_{EPOCHS}.pth')
    assert osp.isfile(ckpt)
    proc = run_tool(['tools/test.py', DEMO_CFG, ckpt, '--work-dir',
                     str(tmp_path / 'test')] + _options(root, train=False))
    after = _coco_ap(proc.stdout + proc.stderr)
    print('demo AP before', before, 'after', after)
    assert before['bbox'] < 0.005, before
    # measured: 0.000 before, 0.004 after (bbox), 0.002 after (segm)
    assert after['bbox'] >= max(0.002, 3 * before['bbox']), (before, after)
    assert after['segm'] > before['segm'], (before, after)
