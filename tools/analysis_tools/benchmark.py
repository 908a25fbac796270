# Copyright (c) mmpvg contributors. All rights reserved.
"""Speed of MPVGViT (every pe_mode) against mmpretrain's VisionTransformer.

All models of one arch are timed interleaved in one process (model A, B, C,
A, B, C, ...) after a warm-up, so that drifts of the machine hit every model
alike; the table reports medians. FLOPs are counted by mmengine's
FlopAnalyzer (multiply-adds, as mmengine and fvcore count them) with a
handle for ``scaled_dot_product_attention``, which it otherwise skips.
Peak memory is CUDA's peak allocated memory during one untimed pass (above
what was allocated before it), on a GPU only: on the CPU, freed memory is
kept and reused by the allocator, so one process cannot attribute a peak to
each of several interleaved models, and the table says n/a.

Example:
    python tools/analysis_tools/benchmark.py --archs deit-tiny \
        --batch-size 32 --repeats 10 --out work_dirs/benchmark.md
"""
import argparse
import math
import os.path as osp
import statistics
import sys
import time
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))
from functools import reduce

import torch
import torch.nn as nn
from mmpretrain.models import VisionTransformer

from mmpvg.models import PE_MODES, MPVGViT

REFERENCE = 'mmpretrain ViT'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--archs', nargs='+', default=['deit-tiny'],
                        choices=['deit-tiny', 'deit-small', 'deit-base'])
    parser.add_argument('--modes', nargs='+', default=list(PE_MODES),
                        choices=list(PE_MODES))
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--train', action='store_true',
                        help='also time a training step (fwd + bwd + AdamW)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--out', help='write the markdown table here')
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error('--repeats and --batch-size must be >= 1, --warmup >= 0')
    return args


class Classifier(nn.Module):
    """Backbone + linear head, the unit that is timed."""

    def __init__(self, backbone, embed_dims, num_classes=1000):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(embed_dims, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x)[-1])


def sdpa_flop_jit(inputs, outputs):
    """Multiply-adds of scaled_dot_product_attention: QK^T and AV."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = reduce(lambda a, b: a * b, q[:-2], 1)
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count_flops(model, img_size, device):
    from mmengine.analysis import FlopAnalyzer
    x = torch.randn(1, 3, img_size, img_size, device=device)
    analyzer = FlopAnalyzer(model.eval(), (x, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention',
                           sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total()


def peak_memory_mb(fn, device):
    """Peak CUDA memory that ``fn()`` adds, in MiB; NaN on the CPU."""
    if not device.startswith('cuda'):
        return float('nan')
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def build_models(arch, modes):
    models = {REFERENCE: VisionTransformer(arch=arch, out_type='cls_token')}
    for mode in modes:
        models[f'MPVGViT {mode}'] = MPVGViT(arch=arch, pe_mode=mode)
    return {name: Classifier(b, b.embed_dims) for name, b in models.items()}


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_inference(model, x, device):
    with torch.no_grad():
        sync(device)
        start = time.perf_counter()
        model(x)
        sync(device)
    return time.perf_counter() - start


def time_train_step(model, optimizer, x, y, device):
    sync(device)
    start = time.perf_counter()
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    sync(device)
    return time.perf_counter() - start


def benchmark_arch(arch, args):
    device = args.device
    models = build_models(arch, args.modes)
    for m in models.values():
        m.to(device)
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size,
                    device=device)
    y = torch.randint(0, 1000, (args.batch_size, ), device=device)
    one = x[:1]
    results = {name: dict(infer=[], latency=[], train=[]) for name in models}
    optimizers = {n: torch.optim.AdamW(m.parameters(), lr=1e-4)
                  for n, m in models.items()}

    for step in range(args.warmup + args.repeats):
        for name, model in models.items():
            model.eval()
            t_batch = time_inference(model, x, device)
            t_one = time_inference(model, one, device)
            t_train = None
            if args.train:
                model.train()
                t_train = time_train_step(model, optimizers[name], x, y,
                                          device)
            if step >= args.warmup:
                results[name]['infer'].append(t_batch)
                results[name]['latency'].append(t_one)
                if t_train is not None:
                    results[name]['train'].append(t_train)

    memory = {}
    for name, model in models.items():
        model.eval()
        with torch.no_grad():
            infer_mem = peak_memory_mb(lambda: model(x), device)
        train_mem = None
        if args.train:
            model.train()
            train_mem = peak_memory_mb(
                lambda: time_train_step(model, optimizers[name], x, y, device),
                device)
        memory[name] = (infer_mem, train_mem)

    rows = []
    ref = statistics.median(results[REFERENCE]['infer'])
    for name, model in models.items():
        r = results[name]
        infer = statistics.median(r['infer'])
        row = dict(
            arch=arch, model=name,
            params=sum(p.numel() for p in model.parameters()) / 1e6,
            gflops=count_flops(model, args.img_size, device) / 1e9,
            infer_mem=memory[name][0],
            throughput=args.batch_size / infer,
            latency_ms=statistics.median(r['latency']) * 1e3,
            relative=ref / infer)
        if r['train']:
            row['train_throughput'] = args.batch_size / statistics.median(
                r['train'])
            row['train_mem'] = memory[name][1]
        rows.append(row)
    return rows


def _mem(mib):
    return 'n/a' if math.isnan(mib) else f'{mib:.0f}'


def to_markdown(rows, args):
    train = args.train
    cols = ['arch', 'model', 'params (M)', 'GFLOPs', 'inference img/s',
            'vs mmpretrain', 'latency bs1 (ms)', 'peak mem inference (MiB)']
    if train:
        cols += ['train img/s', 'peak mem train step (MiB)']
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    for r in rows:
        cells = [r['arch'], r['model'], f"{r['params']:.2f}",
                 f"{r['gflops']:.2f}", f"{r['throughput']:.1f}",
                 f"{r['relative']:.2f}x", f"{r['latency_ms']:.1f}",
                 _mem(r['infer_mem'])]
        if train:
            cells += [f"{r['train_throughput']:.1f}", _mem(r['train_mem'])]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
    lines.append(
        f'device: {args.device} ({torch.get_num_threads()} threads), '
        f'torch {torch.__version__}, batch {args.batch_size}, '
        f'{args.img_size}x{args.img_size}, median of {args.repeats} '
        f'interleaved repeats after {args.warmup} warm-up rounds; GFLOPs per '
        'image (multiply-adds, attention included).')
    return '\n'.join(lines)


def main():
    args = parse_args()
    torch.manual_seed(0)
    rows = []
    for arch in args.archs:
        rows += benchmark_arch(arch, args)
    table = to_markdown(rows, args)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
