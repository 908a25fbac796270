# Copyright (c) mmpvg contributors. All rights reserved.
"""MPVGSwin in every mode against mmpretrain's SwinTransformer, side by side.

Each model is a classifier (backbone, GAP of the last map, linear head to
1000 classes). Reported per model: parameters, GFLOPs per image (mmengine's
FlopAnalyzer, multiply-adds, with the SDPA handle of benchmark.py) and the
median inference time of a batch, timed interleaved in one process after
warm-up. The reference is mmpretrain's Swin with ``use_abs_pos_embed=True``,
the paper's Default Swin, which MPVGSwin 'gap' reproduces exactly.

Example:
    python tools/analysis_tools/benchmark_swin.py --batch-size 8 --repeats 5
"""
import argparse
import os.path as osp
import statistics
import sys

import torch
import torch.nn as nn

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark import count_flops, time_inference  # noqa: E402

MODES = ('gap', 'lape', 'pvg', 'mpvg')
REFERENCE = 'mmpretrain Swin (abs PE)'


class Classifier(nn.Module):
    """Backbone, GAP of its last map, linear head."""

    def __init__(self, backbone, channels, num_classes=1000):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x)[-1].mean((2, 3)))


def build_models(arch, img_size):
    from mmpretrain.models import SwinTransformer

    import mmpvg  # noqa: F401
    from mmpvg.models import MPVGSwin
    models = {REFERENCE: SwinTransformer(arch=arch, img_size=img_size,
                                         use_abs_pos_embed=True)}
    for mode in MODES:
        models[f'MPVGSwin {mode}'] = MPVGSwin(arch=arch, img_size=img_size,
                                              pe_mode=mode)
    return {name: Classifier(b, b.num_features[-1]).eval()
            for name, b in models.items()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='tiny')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    models = {n: m.to(args.device)
              for n, m in build_models(args.arch, args.img_size).items()}
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size,
                    device=args.device)
    times = {name: [] for name in models}
    for i in range(args.warmup + args.repeats):
        for name, model in models.items():  # interleaved
            t = time_inference(model, x, args.device)
            if i >= args.warmup:
                times[name].append(t)
    ref = statistics.median(times[REFERENCE])
    print(f'| model | params (M) | GFLOPs | batch {args.batch_size} forward '
          '(s, median) | vs mmpretrain |')
    print('|---|---|---|---|---|')
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        gflops = count_flops(model, args.img_size, args.device) / 1e9
        t = statistics.median(times[name])
        print(f'| {name} | {params:.2f} | {gflops:.2f} | {t:.3f} | '
              f'{ref / t:.2f}x |')
    print(f'\ndevice: {args.device} ({torch.get_num_threads()} threads), '
          f'torch {torch.__version__}, {args.img_size}x{args.img_size}, '
          f'median of {args.repeats} interleaved repeats after '
          f'{args.warmup} warm-up rounds; GFLOPs per image (multiply-adds, '
          'attention included); speed ratio > 1: faster than mmpretrain.')


if __name__ == '__main__':
    main()
