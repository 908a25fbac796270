"""tools/train.py + tools/test.py on the segmentation demo config.

A short real run of configs/demo/upernet_vit-demo-mpvg_mln_*_demo-shapes-*.py
on freshly drawn shapes data (ADE20K layout): mmseg's Runner, data
pipeline, slide inference and IoUMetric. The trained segmentor must reach an
mIoU that an untrained one of the same config does not.
"""
import os.path as osp
import re

import pytest
import torch

from mmpvg.testing import REPO_ROOT, run_tool, save_untrained

SEG_CFG = 'configs/demo/upernet_vit-demo-mpvg_mln_1xb8-600_demo-shapes-64x64.py'
ITERS = 200


@pytest.fixture(scope='module')
def shapes_ade(tmp_path_factory):
    from mmpvg.demo import make_shapes_ade
    root = str(tmp_path_factory.mktemp('data') / 'demo_shapes_ade')
    make_shapes_ade(root, num_train=64, num_val=16)
    return root


def seg_options(data_root, iters=ITERS):
    # The demo-pretrained backbone (work_dirs/demo/...) is not part of a
    # test run: the backbone starts from scratch, so a pass shows that the
    # whole segmentor learns, not that it inherits a good backbone.
    opts = ['model.backbone.init_cfg=None',
            f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            f'param_scheduler.1.end={iters}']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={data_root}',
                 f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return ['--cfg-options'] + opts


def miou_of(log):
    found = re.findall(r'mIoU: ([0-9.]+)', log)
    assert found, log[-3000:]
    return float(found[-1])


def test_config_follows_the_recipe():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, SEG_CFG))
    assert cfg.default_scope == 'mmseg'
    assert cfg.optim_wrapper.constructor == 'LayerDecayOptimWrapperConstructor'
    assert cfg.model.backbone.type == 'MPVGViT'
    assert cfg.model.backbone.init_cfg.checkpoint == (
        'work_dirs/demo/vit-demo-mpvg_1xb64_demo-digits/epoch_30.pth')
    assert cfg.model.neck.type == 'MultiLevelNeck'
    assert cfg.model.test_cfg.mode == 'slide'
    assert cfg.test_evaluator.type == 'IoUMetric'
    assert cfg.test_evaluator.iou_metrics == ['mIoU']
    warmup, poly = cfg.param_scheduler
    assert poly.type == 'PolyLR' and poly.end == cfg.train_cfg.max_iters


def test_train_then_test_beats_untrained(tmp_path, shapes_ade):
    work = str(tmp_path / 'work')
    run_tool(['tools/train.py', SEG_CFG, '--work-dir', work] +
             seg_options(shapes_ade))
    ckpt = osp.join(work, f'iter_{ITERS}.pth')
    assert osp.isfile(ckpt)
    proc = run_tool(['tools/test.py', SEG_CFG, ckpt, '--work-dir',
                     str(tmp_path / 'test')] + seg_options(shapes_ade))
    trained = miou_of(proc.stdout + proc.stderr)

    untrained_ckpt = str(tmp_path / 'untrained.pth')
    save_untrained(SEG_CFG, untrained_ckpt)
    proc = run_tool(['tools/test.py', SEG_CFG, untrained_ckpt, '--work-dir',
                     str(tmp_path / 'test0')] + seg_options(shapes_ade))
    untrained = miou_of(proc.stdout + proc.stderr)
    print(f'segmentation demo mIoU: untrained {untrained}, '
          f'{ITERS} iterations {trained}')
    # 6 classes; sky and ground cover most pixels. Measured on a 2-core CPU:
    # untrained 0.8, 200 iterations from scratch 27.7 (sky and ground right,
    # about 31 if they were perfect and no shape found); the full demo
    # (600 iterations from the demo-pretrained backbone, 256 images) 35.
    assert untrained < 10.0, untrained
    assert trained > 15.0 and trained > untrained + 10.0, (trained,
                                                           untrained)


def test_dist_train_segmentation_two_processes_on_cpu(tmp_path, shapes_ade):
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    work = str(tmp_path / 'dist')
    opts = seg_options(shapes_ade, iters=4)
    opts += ['param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
             'val_dataloader.dataset.indices=4']
    proc = run_tool(['tools/dist_train.sh', SEG_CFG, '2', '--work-dir', work]
                    + opts, env=dict(PORT=str(port)))
    log = proc.stdout + proc.stderr
    assert 'gloo' in log
    miou_of(log)  # the distributed validation ran IoUMetric
    ckpt = torch.load(osp.join(work, 'iter_4.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 4
