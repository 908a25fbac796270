# Copyright (c) mmpvg contributors. All rights reserved.
"""Evaluate a checkpoint of a classifier, detector or segmentor.

Dispatches on the config's ``default_scope`` like ``tools/train.py``.
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
                                build_runner, enable_visualization,
                                ensure_local_rank,
                                load_config, prepare_test_output,
                                refuse_overwrite,
                                set_work_dir, setup_cpu_distributed)


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump predictions: a .pkl file (classification, '
        'detection) or a directory of label maps (segmentation); an '
        'existing one is refused without --force')
    parser.add_argument(
        '--force', action='store_true',
        help='let --out replace an existing file or directory')
    parser.add_argument(
        '--show-dir', help='save visualised predictions to this directory')
    return add_launch_args(parser).parse_args()


def build(args):
    """The Runner and the dump metric (or None) for ``args``."""
    ensure_local_rank(args.local_rank)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'Checkpoint {args.checkpoint!r} does not exist.')
    if args.out and not args.force:
        refuse_overwrite(args.out, '--out')
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)
    apply_scope_defaults(cfg)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    # mmseg writes predicted label maps into a directory; the others dump
    # the predictions through one more metric of the built evaluator.
    dump_metric = prepare_test_output(cfg, args.out) if args.out else None

    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    # refuse a checkpoint that does not fit instead of evaluating random
    # weights (mmengine only warns)
    runner.register_hook(CheckpointFitHook(exact=True))
    if dump_metric is not None:
        runner.test_evaluator.metrics.append(dump_metric)
    return runner


def main():
    args = parse_args()
    with one_line_errors('test.py'):
        runner = build(args)
    with one_line_errors('test.py', InputError):
        runner.test()


if __name__ == '__main__':
    main()
