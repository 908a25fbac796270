"""The Swin demo classifier (configs/demo/swin-demo-mpvg_1xb64_demo-digits.py)
really learns: a short run through tools/train.py on part of the digits
data lowers the loss and beats chance (10 classes: 10%) clearly."""
import re

from mmpvg.testing import run_tool

CFG = 'configs/demo/swin-demo-mpvg_1xb64_demo-digits.py'


def test_swin_demo_learns(tmp_path, demo_digits):
    # all 1438 training images (a leading subset would hold few classes),
    # the 30-epoch schedule squeezed into 3 (1 warm-up epoch)
    opts = ['train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=3',
            'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
            'param_scheduler.1.end=3']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={demo_digits}',
                 f'{loader}.num_workers=0']
    proc = run_tool(['tools/train.py', CFG, '--work-dir',
                     str(tmp_path / 'work'), '--cfg-options'] + opts)
    log = proc.stdout + proc.stderr
    losses = [float(v) for v in re.findall(r'\bloss: ([0-9.]+)', log)]
    assert len(losses) >= 60, log[-3000:]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.3, (first, last)
    top1 = float(re.findall(r'accuracy/top1: ([0-9.]+)', log)[-1])
    assert top1 > 40.0, top1
