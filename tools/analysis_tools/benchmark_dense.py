# Copyright (c) mmpvg contributors. All rights reserved.
"""Forward time of detection / segmentation models built from their configs.

Each config's model is built in its own scope (``default_scope``: mmdet or
mmseg) with random weights (nothing is loaded: ``init_cfg`` of the backbone
is dropped), then timed on one random image, interleaved (model A, B, A, B,
...) after a warm-up so that drifts of a shared machine hit every model
alike (:func:`mmpvg.analysis.benchmark.time_interleaved`, as
``benchmark.py``); the table reports medians. ``--part`` picks what is timed:

* ``backbone``: the backbone alone;
* ``feat``: backbone + neck (``extract_feat``; for a segmentor, which has
  no separate neck call, the same);
* ``full``: the whole model in eval mode (``predict`` on a packed batch).

Example (the closing-note comparison of issue 3, one 512x512 image):
    D=configs/mask_rcnn
    python tools/analysis_tools/benchmark_dense.py \
        $D/mask-rcnn_vit-adapter-ti-mpvg_fpn_8xb1-ms-crop-3x_coco.py \
        $D/mask-rcnn_deit-tiny-mpvg_sfp_8xb1-ms-crop-3x_coco.py \
        --img-size 512 --part feat
"""
import argparse
import os.path as osp
import statistics
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

import torch
from mmengine.config import DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope

import mmpvg  # noqa: F401  (registers the models in every scope)
from mmpvg.analysis.benchmark import time_interleaved
from mmpvg.utils.launch import load_config

PARTS = ('backbone', 'feat', 'full')
SCOPES = ('mmdet', 'mmseg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='mmdet/mmseg configs')
    parser.add_argument('--img-size', type=int, nargs='+', default=[512],
                        help='H [W] of the input image (default 512)')
    parser.add_argument('--part', choices=PARTS, default='feat',
                        help='what to time (default: backbone + neck)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: unchanged)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config')
    args = parser.parse_args(argv)
    if len(args.img_size) not in (1, 2) or min(args.img_size) < 32:
        parser.error('--img-size takes H or H W, each >= 32, got '
                     f'{args.img_size}')
    if args.warmup < 0 or args.repeats < 1:
        parser.error('--warmup must be >= 0 and --repeats >= 1, got '
                     f'{args.warmup} and {args.repeats}')
    return args


def build_model(config, cfg_options=None):
    """Build the model of ``config`` in its scope, with random weights."""
    cfg = load_config(config, cfg_options)
    if cfg.default_scope not in SCOPES:
        raise ValueError(f'{config}: default_scope must be one of {SCOPES} '
                         f'for a dense model, got {cfg.default_scope!r}')
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.pop('init_cfg', None)
    # mmengine's root registry builds in the default scope, as the Runner
    model = MODELS.build(cfg.model)
    # a SyncBN layer needs a process group; time it as BN
    return revert_sync_batchnorm(model).eval(), cfg.default_scope


def make_runner(model, scope, part, img_hw):
    """A no-argument callable that runs ``part`` of ``model`` once."""
    h, w = img_hw
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    if part == 'full':
        if scope == 'mmdet':
            from mmdet.structures import DetDataSample
            sample = DetDataSample(metainfo=dict(
                img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
        else:
            from mmseg.structures import SegDataSample
            sample = SegDataSample(metainfo=dict(
                img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        data = model.data_preprocessor(
            dict(inputs=[img], data_samples=[sample]), False)
        return lambda: model(**data, mode='predict')
    inputs = model.data_preprocessor(dict(inputs=[img]), False)['inputs']
    if part == 'backbone':
        return lambda: model.backbone(inputs)
    return lambda: model.extract_feat(inputs)


def benchmark(configs, img_hw, part='feat', warmup=2, repeats=5,
              cfg_options=None):
    """Median seconds per forward of each config's model, interleaved.

    Returns:
        list[dict]: ``config``, ``params`` (millions, whole model) and
        ``seconds`` (median) for each config, in order.
    """
    runners, rows = [], []
    for config in configs:
        model, scope = build_model(config, cfg_options)
        runners.append(make_runner(model, scope, part, img_hw))
        rows.append(dict(
            config=config,
            params=sum(p.numel() for p in model.parameters()) / 1e6))
    with torch.no_grad():
        times = time_interleaved(dict(enumerate(runners)), warmup, repeats)
    for i, row in enumerate(rows):
        row['seconds'] = statistics.median(times[i])
    return rows


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    img_hw = (args.img_size * 2)[:2]
    rows = benchmark(args.configs, img_hw, args.part, args.warmup,
                     args.repeats, args.cfg_options)
    print(f'| config | params (M) | {args.part} forward, '
          f'{img_hw[0]}x{img_hw[1]} (s) |')
    print('|---|---|---|')
    for row in rows:
        print(f"| {osp.basename(row['config'])} | {row['params']:.1f} | "
              f"{row['seconds']:.3f} |")
    print(f'(median of {args.repeats} after {args.warmup} warm-up, '
          f'{torch.get_num_threads()} threads, batch 1, eval, no grad)')


if __name__ == '__main__':
    main()
