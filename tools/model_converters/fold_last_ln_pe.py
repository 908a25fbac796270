# Copyright (c) mmpvg contributors. All rights reserved.
"""Fold MPVG's Last-LN PE term into the head bias of a classifier checkpoint.

The output checkpoint loads into the same config with
``--cfg-options model.backbone.last_ln_pe=False`` and gives the same logits
(within float rounding) at the folded input size.

Usage:
    python tools/model_converters/fold_last_ln_pe.py CONFIG CHECKPOINT OUT \
        [--img-size 224] [--force]
"""
import argparse
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import mmpvg  # noqa: F401
from mmpvg.models import fold_last_ln_pe
from mmpvg.converters import check_output_path, run_cli, save_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='fold_last_ln_pe.py',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('config', help='classifier config (mmpretrain)')
    parser.add_argument('checkpoint', help='checkpoint to fold')
    parser.add_argument('out', help='where to write the folded checkpoint')
    parser.add_argument('--img-size', type=int, nargs='+',
                        help='input size (H [W]) the fold is exact for; '
                        "defaults to the backbone's img_size")
    parser.add_argument('--force', action='store_true',
                        help='overwrite OUT if it exists')
    args = parser.parse_args(argv)
    if args.img_size is not None and len(args.img_size) not in (1, 2):
        parser.error('--img-size takes H or H W.')
    return parser, args


def convert(args):
    # before the slow part; the checkpoint itself is never replaced
    check_output_path(args.out, force=args.force, src=args.checkpoint)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.eval()
    img_size = None
    if args.img_size:
        img_size = tuple(args.img_size) * (3 - len(args.img_size))
    grid = fold_last_ln_pe(model, img_size)
    save_checkpoint(
        {'state_dict': model.state_dict(),
         'meta': dict(folded_last_ln_pe=dict(token_grid=list(grid)))},
        args.out, force=args.force)
    print(f'Folded LN\'_last(pos_k) into head.fc.bias for a {grid[0]}x'
          f'{grid[1]} token grid; wrote {args.out}. Load it with '
          '--cfg-options model.backbone.last_ln_pe=False')


def main(argv=None):
    run_cli(parse_args, convert, argv)


if __name__ == '__main__':
    sys.exit(main())
