"""The CeiT family's CPU demo
(configs/demo/ceit-demo-mpvg_1xb64_demo-digits.py) trains through
tools/train.py: the loss falls and top-1 beats chance.

A short run (the 30-epoch schedule squeezed into 2 epochs, 1 of warm-up)
keeps it under a minute on an idle 2-core machine; the full 30-epoch demo
is in the README."""
import re

from mmpvg.testing import run_tool

CFG = 'configs/demo/ceit-demo-mpvg_1xb64_demo-digits.py'


def test_ceit_demo_learns(tmp_path, demo_digits):
    # every training image: the dataset is sorted by class, so a leading
    # subset would hold only a few classes
    opts = ['train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
            'default_hooks.logger.interval=2',
            'default_hooks.checkpoint.interval=2',
            'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
            'param_scheduler.1.end=2']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={demo_digits}',
                 f'{loader}.num_workers=0']
    proc = run_tool(['tools/train.py', CFG, '--work-dir',
                     str(tmp_path / 'work'), '--cfg-options'] + opts)
    log = proc.stdout + proc.stderr
    losses = [float(v) for v in re.findall(r'\sloss: ([0-9.]+)', log)]
    assert len(losses) >= 8, log[-3000:]
    # label-smoothed cross-entropy starts near ln(10) = 2.3
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    top1 = float(re.findall(r'accuracy/top1: ([0-9.]+)', log)[-1])
    assert top1 > 50.0, top1  # chance: 10%
    assert (tmp_path / 'work' / 'epoch_2.pth').is_file()
