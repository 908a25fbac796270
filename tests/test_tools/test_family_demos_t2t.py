"""The T2T-ViT family's CPU demo
(configs/demo/t2t-vit-demo-mpvg_1xb64_demo-digits.py) trains through
tools/train.py: the loss falls and top-1 beats chance clearly.

A short run (the first 4 of the demo's 30 epochs, with one warm-up epoch
instead of three) keeps it under a minute on an idle 2-core machine; the
full demo is in the README."""
import re

from mmpvg.testing import run_tool

CFG = 'configs/demo/t2t-vit-demo-mpvg_1xb64_demo-digits.py'


def test_t2t_demo_learns(tmp_path, demo_digits):
    opts = ['train_cfg.max_epochs=4', 'train_cfg.val_interval=4',
            'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
            'default_hooks.logger.interval=4',
            'default_hooks.checkpoint.interval=4']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={demo_digits}',
                 f'{loader}.num_workers=0']
    proc = run_tool(['tools/train.py', CFG, '--work-dir',
                     str(tmp_path / 'work'), '--cfg-options'] + opts)
    log = proc.stdout + proc.stderr
    losses = [float(v) for v in re.findall(
        r'Epoch\(train\).*?\sloss: ([0-9.]+)', log)]
    assert len(losses) >= 20, log[-3000:]
    # label-smoothed cross-entropy starts near ln(10) = 2.3
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.8 * first, losses
    top1 = float(re.findall(r'accuracy/top1: ([0-9.]+)', log)[-1])
    assert top1 > 50.0, top1  # chance: 10%; about 80% here
    assert (tmp_path / 'work' / 'epoch_4.pth').is_file()
