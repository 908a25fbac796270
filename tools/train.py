# Copyright (c) mmpvg contributors. All rights reserved.
"""Train a classifier, detector or segmentor from an mmpvg config.

The config's ``default_scope`` (mmpretrain / mmdet / mmseg) decides which
package's conventions apply; the command line is the one those packages'
own ``tools/train.py`` accept.
"""
import argparse
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../..')))

import mmpvg  # noqa: F401  (registers models, allows mmengine checkpoints)
from mmpvg.utils.checkpoint_fit import CheckpointFitHook
from mmpvg.utils.errors import InputError, one_line_errors
from mmpvg.utils.launch import (add_launch_args, apply_scope_defaults,
                                build_runner, check_work_dir, enable_amp,
                                enable_auto_scale_lr, enable_exact_resume,
                                ensure_local_rank,
                                load_config, set_work_dir,
                                setup_cpu_distributed)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or with no value from the '
        'latest checkpoint in the work dir (none there: start afresh, and '
        'say so in the log)')
    parser.add_argument(
        '--force', action='store_true',
        help='start afresh in a work dir that holds checkpoints of another '
        'run, overwriting them (without it such a run is refused)')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--no-validate', action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the lr by actual batch size / '
        'auto_scale_lr.base_batch_size')
    return add_launch_args(parser).parse_args()


def build(args):
    """The Runner for ``args``, its hooks registered."""
    ensure_local_rank(args.local_rank)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)
    apply_scope_defaults(cfg)

    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    # with --resume and nothing to resume: the line to log, and the run
    # starts as the config says (its load_from kept)
    fresh_start = check_work_dir(cfg, args.resume, args.force)
    if not fresh_start and args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif not fresh_start and args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    # every config: RNG state in checkpoints, workers seeded from it
    enable_exact_resume(cfg)

    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    # fine-tuning: the backbone must fit load_from; resuming: everything
    runner.register_hook(CheckpointFitHook(exact=False))
    if fresh_start:
        runner.logger.warning(fresh_start)
    return runner


def main():
    args = parse_args()
    with one_line_errors('train.py'):
        runner = build(args)
    with one_line_errors('train.py', InputError):
        runner.train()


if __name__ == '__main__':
    main()
