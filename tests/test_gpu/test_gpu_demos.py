"""GPU: the detection and segmentation demo configs train a few iterations
on the GPU through tools/train.py (mmcv's CUDA ops in the ViT-Adapter and
Mask R-CNN heads), with AMP for the segmentor, and a 2-process NCCL run
when the machine has two GPUs. Skipped without CUDA (run by
tools/gpu_check.sh); the learning itself is checked on the CPU by
tests/test_tools/test_*_demo.py."""
import os.path as osp
import re

import pytest
import torch

from mmpvg.testing import REPO_ROOT, run_tool

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU (tools/gpu_check.sh)')

DET_CFG = osp.join(
    REPO_ROOT,
    'configs/demo/mask-rcnn_vit-adapter-demo-mpvg_fpn_1xb4-8e_demo-shapes.py')
SEG_CFG = osp.join(
    REPO_ROOT,
    'configs/demo/upernet_vit-demo-mpvg_mln_1xb8-600_demo-shapes-64x64.py')


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    from mmpvg.demo import make_shapes_ade, make_shapes_coco
    root = tmp_path_factory.mktemp('gpu_data')
    coco, ade = str(root / 'coco'), str(root / 'ade')
    make_shapes_coco(coco, num_train=16, num_val=4)
    make_shapes_ade(ade, num_train=16, num_val=4)
    return dict(coco=coco, ade=ade)


def _losses(log):
    """Every logged loss value (mmengine's 'loss: x' fields)."""
    return [float(v) for v in re.findall(r'\bloss: ([-\d.naninf]+)', log)]


def _det_options(root, epochs=1):
    opts = ['model.backbone.init_cfg=None', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}',
            'default_hooks.logger.interval=1',
            f'param_scheduler.1.end={epochs}']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={root}',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    for split in ('val', 'test'):
        opts.append(f'{split}_evaluator.ann_file={root}/annotations/'
                    'instances_val.json')
    return ['--cfg-options'] + opts


def _seg_options(root, iters=8):
    opts = ['model.backbone.init_cfg=None', f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            'default_hooks.logger.interval=1', 'param_scheduler.0.end=2',
            'param_scheduler.1.begin=2', f'param_scheduler.1.end={iters}']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={root}',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    return ['--cfg-options'] + opts


def _check_log(log):
    losses = _losses(log)
    assert losses, log[-3000:]
    assert all(v == v and abs(v) < 1e4 for v in losses), losses


def test_detection_demo_trains_on_gpu(shapes, tmp_path):
    work = str(tmp_path / 'det')
    proc = run_tool(['tools/train.py', DET_CFG, '--work-dir', work] +
                    _det_options(shapes['coco']), env=dict(
                        CUDA_VISIBLE_DEVICES='0'))
    log = proc.stdout + proc.stderr
    _check_log(log)
    # the validation ran (an untrained detector may find nothing to score)
    assert 'Epoch(val)' in log
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))


@pytest.mark.parametrize('amp', [False, True])
def test_segmentation_demo_trains_on_gpu(shapes, tmp_path, amp):
    work = str(tmp_path / f'seg_amp{amp}')
    proc = run_tool(['tools/train.py', SEG_CFG, '--work-dir', work] +
                    (['--amp'] if amp else []) + _seg_options(shapes['ade']),
                    env=dict(CUDA_VISIBLE_DEVICES='0'))
    log = proc.stdout + proc.stderr
    _check_log(log)
    assert 'mIoU' in log
    assert osp.isfile(osp.join(work, 'iter_8.pth'))


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason='the NCCL run needs two GPUs')
def test_two_process_nccl_training(shapes, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    work = str(tmp_path / 'dist')
    proc = run_tool(['tools/dist_train.sh', SEG_CFG, '2', '--work-dir', work]
                    + _seg_options(shapes['ade'], iters=4),
                    env=dict(PORT=str(port), CUDA_VISIBLE_DEVICES='0,1'))
    log = proc.stdout + proc.stderr
    assert 'nccl' in log.lower(), log[-3000:]
    _check_log(log)
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
