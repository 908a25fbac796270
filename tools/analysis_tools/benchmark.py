# Copyright (c) mmpvg contributors. All rights reserved.
"""Speed and memory of MPVGViT / MPVGSwin in every mode against timm's and
mmpretrain's models of the same arch.

``--family vit``: MPVGViT against timm's and mmpretrain's
VisionTransformer (same depth, width, heads, MLP, patch); the class-token
modes ('cls', 'lape') against their class-token models, the others against
their GAP models (one LayerNorm, then the head). ``--family swin``:
MPVGSwin against mmpretrain's SwinTransformer with its absolute PE (the
paper's Default Swin, which 'gap' reproduces) and timm's (same stages,
window and heads; relative bias only, no absolute PE).

Every model is a classifier with a 1000-class head. All of one arch are
timed interleaved in this process (A, B, C, A, B, C, ...) after warm-up:
inference (no grad) and a training step (forward, cross-entropy,
backward, AdamW step). The ratios are of medians, with the quartiles of
the per-round ratios in brackets (the noise: a ratio whose range holds
1.00 is a tie). Peak memory is measured for each model in its own
subprocess, before the timing: peak resident memory one pass adds on the
CPU, CUDA's peak allocated memory on a GPU. FLOPs are multiply-adds
(mmengine's FlopAnalyzer, attention included). The machinery is
:mod:`mmpvg.analysis.benchmark`.

Example:
    python tools/analysis_tools/benchmark.py --family vit --archs deit-tiny \
        --batch-size 8 --repeats 7 --out work_dirs/benchmark.md
"""
import argparse
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

import torch

from mmpvg.analysis.benchmark import (AMP_DTYPES, SWIN_ARCHS, VIT_ARCHS,
                                      benchmark, model_specs, to_markdown)

PEERS = ('timm', 'mmpretrain')


def family_modes(family):
    from mmpvg.models import PE_MODES
    from mmpvg.models.backbones.mpvg_swin import SWIN_PE_MODES
    return list(PE_MODES if family == 'vit' else SWIN_PE_MODES)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', choices=['vit', 'swin'], default='vit')
    parser.add_argument('--archs', nargs='+',
                        help=f'vit: {VIT_ARCHS} (default deit-tiny); swin: '
                        f'{SWIN_ARCHS} (default tiny)')
    parser.add_argument('--modes', nargs='+',
                        help='pe_modes to time (default: every mode of the '
                        'family)')
    parser.add_argument('--peers', nargs='*', default=list(PEERS),
                        choices=PEERS)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--no-train', action='store_true',
                        help='time inference only')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the per-model memory subprocesses')
    parser.add_argument('--no-flops', action='store_true')
    parser.add_argument('--amp', choices=list(AMP_DTYPES), default='none',
                        help='autocast dtype (GPU only)')
    parser.add_argument('--threads', type=int,
                        help='torch.set_num_threads (default: unchanged)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--out', help='also write the markdown table here')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error('--repeats and --batch-size must be >= 1 and --warmup '
                     f'>= 0, got {args.repeats}, {args.batch_size} and '
                     f'{args.warmup}')
    archs = VIT_ARCHS if args.family == 'vit' else SWIN_ARCHS
    args.archs = args.archs or [archs[0]]
    bad = [a for a in args.archs if a not in archs]
    if bad:
        parser.error(f'--archs {bad} are not {args.family} archs; choose '
                     f'from {list(archs)}')
    modes = family_modes(args.family)
    args.modes = args.modes or modes
    bad = [m for m in args.modes if m not in modes]
    if bad:
        parser.error(f'--modes {bad} are not {args.family} modes; choose '
                     f'from {modes}')
    if args.amp != 'none' and not args.device.startswith('cuda'):
        parser.error(f'--amp {args.amp} needs a GPU (--device cuda)')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for arch in args.archs:
        specs = model_specs(args.family, arch, args.modes, args.peers,
                            args.img_size)
        rows += benchmark(specs, args.batch_size, args.device, args.warmup,
                          args.repeats, train=not args.no_train,
                          memory=not args.no_memory,
                          flops=not args.no_flops, amp=args.amp,
                          threads=args.threads)
    device = args.device
    if device.startswith('cuda'):
        device += f' ({torch.cuda.get_device_name(device)})'
    note = (
        f'device: {device}, {torch.get_num_threads()} threads, torch '
        f'{torch.__version__}, amp {args.amp}, batch {args.batch_size}, '
        f'{args.img_size}x{args.img_size}; median of {args.repeats} '
        f'interleaved rounds after {args.warmup} warm-up; ratio > 1: faster '
        'than the peer of the same pooling (brackets: quartiles of the '
        'per-round ratios); peak memory: what one pass adds, one subprocess '
        'per model; GFLOPs per image (multiply-adds, attention included).')
    table = to_markdown(rows, args.batch_size, args.peers, note)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')
    return rows


if __name__ == '__main__':
    main()
