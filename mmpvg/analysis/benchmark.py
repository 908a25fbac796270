# Copyright (c) mmpvg contributors. All rights reserved.
"""Speed and peak memory of classifiers, measured side by side.

The machinery of ``tools/analysis_tools/benchmark*.py``:

* :func:`time_interleaved` times several callables in rounds (A, B, C, A, B,
  C, ...) after a warm-up, so that drifts of a shared machine hit every
  model alike; ratios are of medians and come with the spread of the
  per-round ratios (:func:`ratio`).
* :func:`measure_memory` builds one model in a fresh subprocess and reports
  the peak memory one inference pass and one training step add to the
  process: peak resident memory on the CPU (Linux's VmHWM, reset through
  ``/proc/self/clear_refs`` before each pass; glibc's mmap threshold is
  fixed so that freed tensors leave the process), and
  ``torch.cuda.max_memory_allocated`` on a GPU. One process per model,
  because in one process the CPU allocator keeps and reuses what a model
  freed, so no peak could be attributed to a model.
* :class:`ModelSpec` names a classifier (an mmpvg backbone, timm's or
  mmpretrain's model of the same arch) in a form a subprocess can rebuild
  (:func:`build_classifier`); :func:`model_specs` lists a family's rows.
* :func:`count_flops` counts multiply-adds with mmengine's FlopAnalyzer plus
  a handle for ``scaled_dot_product_attention``, which it otherwise skips.

Imported by the tools only, never by ``import mmpvg``; mmpretrain and timm
are imported when a model of theirs is built.
"""
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from functools import reduce
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn

__all__ = [
    'FAMILIES', 'IMPLS', 'AMP_DTYPES', 'ModelSpec', 'Classifier',
    'build_classifier', 'model_specs', 'count_flops', 'sdpa_flop_jit',
    'time_interleaved', 'inference_runner', 'train_step_runner',
    'measure_memory', 'ratio', 'benchmark', 'to_markdown'
]

FAMILIES = ('vit', 'swin')
IMPLS = ('mmpvg', 'timm', 'mmpretrain')
AMP_DTYPES = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
VIT_ARCHS = ('deit-tiny', 'deit-small', 'deit-base')
SWIN_ARCHS = ('tiny', 'small', 'base')
# A child prints its result on the line after this marker.
_RESULT_MARKER = '@@mmpvg-benchmark-result@@'


class ModelSpec(NamedTuple):
    """A classifier of the benchmark, rebuildable in a subprocess.

    Attributes:
        name (str): Row label.
        family (str): 'vit' or 'swin'.
        impl (str): 'mmpvg', 'timm' or 'mmpretrain'.
        arch (str): The family's preset ('deit-tiny', ..., 'tiny', ...).
        mode (str): For mmpvg the ``pe_mode``; for a peer its pooling,
            'cls' (class token) or 'gap' (global average pooling).
        group (str): 'cls' or 'gap': the peers a row is compared with.
        img_size (int): Input side.
    """
    name: str
    family: str
    impl: str
    arch: str
    mode: str
    group: str
    img_size: int = 224


class Classifier(nn.Module):
    """Backbone, pooling of its last output, 1000-class linear head.

    Args:
        backbone (nn.Module): Returns a tuple whose last entry is a pooled
            vector (B, C) or a map (B, C, H, W), which is averaged.
        channels (int): C.
        num_classes (int): Defaults to 1000.
    """

    def __init__(self, backbone: nn.Module, channels: int,
                 num_classes: int = 1000):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)[-1]
        if feat.dim() == 4:
            feat = feat.mean((2, 3))
        return self.head(feat)


def _vit_arch(arch: str) -> dict:
    from mmpvg.models import MPVGViT
    return MPVGViT.arch_zoo[arch]


def build_classifier(spec: ModelSpec) -> nn.Module:
    """Build the classifier ``spec`` names, with random weights.

    The peers have the arch of the mmpvg model: for a ViT the same depth,
    width, heads, MLP width, patch and qkv bias (a class token and its head
    for 'cls', GAP with one LayerNorm for 'gap'); for Swin the same stages,
    window and heads (mmpretrain's with its absolute PE, as MPVGSwin
    'gap'; timm's has none). Stochastic depth is off everywhere.

    Raises:
        ValueError: If the family, implementation, arch or mode is unknown.
    """
    if spec.family not in FAMILIES or spec.impl not in IMPLS:
        raise ValueError(
            f'Unknown model {spec.family!r}/{spec.impl!r}: families are '
            f'{FAMILIES}, implementations {IMPLS}.')
    archs = VIT_ARCHS if spec.family == 'vit' else SWIN_ARCHS
    if spec.arch not in archs:
        raise ValueError(f'arch={spec.arch!r} is not benchmarked for '
                         f'{spec.family}; choose from {archs}.')
    if spec.impl != 'mmpvg' and spec.mode not in ('cls', 'gap'):
        raise ValueError(f'A peer pools by "cls" or "gap", got '
                         f'{spec.mode!r}.')
    size = spec.img_size
    import mmpvg  # noqa: F401  (registers the models)
    if spec.family == 'vit':
        if spec.impl == 'mmpvg':
            from mmpvg.models import MPVGViT
            backbone = MPVGViT(arch=spec.arch, pe_mode=spec.mode,
                               img_size=size)
            return Classifier(backbone, backbone.embed_dims)
        a = _vit_arch(spec.arch)
        cls = spec.mode == 'cls'
        if spec.impl == 'timm':
            from timm.models.vision_transformer import VisionTransformer
            return VisionTransformer(
                img_size=size, patch_size=16, embed_dim=a['embed_dims'],
                depth=a['num_layers'], num_heads=a['num_heads'],
                mlp_ratio=a['feedforward_channels'] / a['embed_dims'],
                qkv_bias=True, class_token=cls,
                global_pool='token' if cls else 'avg', num_classes=1000)
        from mmpretrain.models import VisionTransformer
        backbone = VisionTransformer(
            arch=spec.arch, img_size=size, with_cls_token=cls,
            # GAP: pool, then one LayerNorm (timm's fc_norm)
            final_norm=cls, out_type='cls_token' if cls else 'avg_featmap')
        return Classifier(backbone, backbone.embed_dims)
    if spec.impl == 'mmpvg':
        from mmpvg.models import MPVGSwin
        backbone = MPVGSwin(arch=spec.arch, img_size=size, pe_mode=spec.mode,
                            drop_path_rate=0.)
        return Classifier(backbone, backbone.num_features[-1])
    from mmpretrain.models import SwinTransformer
    if spec.impl == 'mmpretrain':
        backbone = SwinTransformer(arch=spec.arch, img_size=size,
                                   use_abs_pos_embed=True, drop_path_rate=0.)
        return Classifier(backbone, backbone.num_features[-1])
    from timm.models.swin_transformer import SwinTransformer as TimmSwin
    a = SwinTransformer.arch_zoo[spec.arch]
    return TimmSwin(img_size=size, patch_size=4, embed_dim=a['embed_dims'],
                    depths=tuple(a['depths']),
                    num_heads=tuple(a['num_heads']), window_size=7,
                    drop_path_rate=0., num_classes=1000)


def model_specs(family: str, arch: str, modes: Sequence[str],
                peers: Sequence[str] = ('timm', 'mmpretrain'),
                img_size: int = 224) -> List[ModelSpec]:
    """The rows of one arch: the peers first, then mmpvg in each mode.

    A ViT mode with a class token ('cls', 'lape') is compared with the
    class-token peers, every other mode with the GAP peers; only the peers
    some mode needs are listed. Every Swin mode is GAP.
    """
    from mmpvg.models.layers import PE_MODES
    unknown = set(peers) - set(IMPLS[1:])
    if unknown:
        raise ValueError(f'Unknown peers {sorted(unknown)}; choose from '
                         f'{list(IMPLS[1:])}.')
    if family == 'vit':
        groups = {m: 'cls' if PE_MODES[m]['with_cls_token'] else 'gap'
                  for m in modes}
        label = {'timm': 'timm ViT', 'mmpretrain': 'mmpretrain ViT'}
        ours = 'MPVGViT'
    else:
        groups = dict.fromkeys(modes, 'gap')
        label = {'timm': 'timm Swin (rel. bias only)',
                 'mmpretrain': 'mmpretrain Swin (abs PE)'}
        ours = 'MPVGSwin'
    specs = []
    for group in ('cls', 'gap'):
        if group not in groups.values():
            continue
        for impl in peers:
            name = label[impl] + (f' {group}' if family == 'vit' else '')
            specs.append(ModelSpec(name, family, impl, arch, group, group,
                                   img_size))
    specs += [ModelSpec(f'{ours} {m}', family, 'mmpvg', arch, m, groups[m],
                        img_size) for m in modes]
    return specs


def sdpa_flop_jit(inputs, outputs) -> int:
    """Multiply-adds of scaled_dot_product_attention: QK^T and AV."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = reduce(lambda a, b: a * b, q[:-2], 1)
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count_flops(model: nn.Module, img_size: int, device='cpu') -> int:
    """Multiply-adds of ``model`` on one ``img_size`` image, attention
    included (mmengine's FlopAnalyzer + :func:`sdpa_flop_jit`)."""
    from mmengine.analysis import FlopAnalyzer
    x = torch.randn(1, 3, img_size, img_size, device=device)
    analyzer = FlopAnalyzer(model.eval(), (x, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention',
                           sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total()


def _sync(device: str):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def _autocast(device: str, amp: Optional[str]):
    if AMP_DTYPES.get(amp) is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=AMP_DTYPES[amp])


def inference_runner(model: nn.Module, x: torch.Tensor,
                     amp: Optional[str] = None) -> Callable[[], None]:
    """One no-grad forward of ``model`` (put in eval mode) on ``x``."""
    device = str(x.device)

    def run():
        model.eval()
        with torch.no_grad(), _autocast(device, amp):
            model(x)
    return run


def train_step_runner(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      amp: Optional[str] = None,
                      lr: float = 1e-4) -> Callable[[], None]:
    """One training step: forward, cross-entropy, backward, AdamW step.

    The optimizer is created here; its state is allocated by the first
    step (a warm-up round in :func:`time_interleaved`).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    device = str(x.device)

    def run():
        model.train()
        with _autocast(device, amp):
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return run


def time_interleaved(runners: Dict[str, Callable[[], object]],
                     warmup: int = 2, repeats: int = 5,
                     device: str = 'cpu') -> Dict[str, List[float]]:
    """Seconds of each runner in each of ``repeats`` rounds.

    Every round calls every runner once, in order, so that a drift of the
    machine (another job, clock changes) hits all of them alike; ``warmup``
    untimed rounds come first. On a GPU each call is synchronised.

    Returns:
        dict[str, list[float]]: Per runner, one time per round.

    Raises:
        ValueError: If ``warmup < 0`` or ``repeats < 1``.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f'warmup must be >= 0 and repeats >= 1, got '
                         f'{warmup} and {repeats}.')
    times = {name: [] for name in runners}
    for step in range(warmup + repeats):
        for name, run in runners.items():
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            if step >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def ratio(ref: Sequence[float], times: Sequence[float]) -> dict:
    """Speed of ``times`` relative to ``ref`` (> 1: faster than ref).

    Returns:
        dict: ``median``: median(ref) / median(times); ``low``/``high``:
        the quartiles of the per-round ratios ref[r] / times[r] (the noise
        of the measurement: a ratio within them is a tie).
    """
    per_round = sorted(r / t for r, t in zip(ref, times))
    if len(per_round) >= 4:
        quartiles = statistics.quantiles(per_round, n=4)
        low, high = quartiles[0], quartiles[2]
    else:
        low, high = per_round[0], per_round[-1]
    return dict(median=statistics.median(ref) / statistics.median(times),
                low=low, high=high)


# ---------------------------------------------------------------------- #
# peak memory, one subprocess per model
# ---------------------------------------------------------------------- #
def _status_kib(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Set VmHWM to the current RSS (Linux >= 4.0); False if impossible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _measure_pass(fn: Callable[[], None], device: str) -> dict:
    """Peak memory ``fn()`` adds above what the process holds before it."""
    out = dict(rss_mib=float('nan'), cuda_mib=float('nan'))
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    rss0 = _status_kib('VmRSS')
    can_reset = _reset_peak_rss()
    fn()
    _sync(device)
    peak = _status_kib('VmHWM')
    if can_reset and rss0 is not None and peak is not None:
        out['rss_mib'] = (peak - rss0) / 1024
    if device.startswith('cuda'):
        out['cuda_mib'] = (torch.cuda.max_memory_allocated() -
                           base_cuda) / 2**20
    return out


def _memory_child(payload: dict) -> dict:
    """In the child: build one model, then measure a first inference pass
    and a first training step (optimizer state included)."""
    if payload.get('threads'):
        torch.set_num_threads(payload['threads'])
    torch.manual_seed(0)
    spec = ModelSpec(**payload['spec'])
    device, bs = payload['device'], payload['batch_size']
    model = build_classifier(spec).to(device)
    x = torch.randn(bs, 3, spec.img_size, spec.img_size, device=device)
    y = torch.randint(0, 1000, (bs, ), device=device)
    result = dict(infer=_measure_pass(
        inference_runner(model, x, payload.get('amp')), device))
    if payload.get('train', True):
        result['train'] = _measure_pass(
            train_step_runner(model, x, y, payload.get('amp')), device)
    return result


def measure_memory(spec: ModelSpec, batch_size: int, device: str = 'cpu',
                   train: bool = True, amp: Optional[str] = None,
                   threads: Optional[int] = None,
                   timeout: float = 3600) -> dict:
    """Peak memory of one inference pass and one training step of
    ``spec``, measured in a fresh Python process.

    Returns:
        dict: ``infer`` and (with ``train``) ``train``, each a dict with
        ``rss_mib`` (peak resident memory above the process's before the
        pass; NaN where Linux's /proc cannot report it) and ``cuda_mib``
        (peak CUDA memory allocated above before the pass; NaN on the CPU).

    Raises:
        RuntimeError: With the child's output, if it fails.
    """
    payload = dict(spec=spec._asdict(), batch_size=batch_size, device=device,
                   train=train, amp=amp, threads=threads)
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (root, env.get('PYTHONPATH')) if p)
    # a fixed mmap threshold: tensors freed are returned to the system, so
    # the resident set follows the live memory of the pass
    env['MALLOC_MMAP_THRESHOLD_'] = '65536'
    cmd = [sys.executable, '-m', 'mmpvg.analysis.benchmark',
           json.dumps(payload)]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or _RESULT_MARKER not in lines:
        raise RuntimeError(
            f'The memory measurement of {spec.name!r} failed (exit '
            f'{proc.returncode}):\n{proc.stdout[-3000:]}\n'
            f'{proc.stderr[-3000:]}')
    return json.loads(lines[lines.index(_RESULT_MARKER) + 1])


# ---------------------------------------------------------------------- #
# the whole comparison
# ---------------------------------------------------------------------- #
def benchmark(specs: Sequence[ModelSpec], batch_size: int = 8,
              device: str = 'cpu', warmup: int = 2, repeats: int = 5,
              train: bool = True, memory: bool = True, flops: bool = True,
              amp: str = 'none',
              threads: Optional[int] = None) -> List[dict]:
    """Time every model of ``specs`` interleaved in this process (inference
    and, with ``train``, a training step), measure their memory one
    subprocess each (before the timing, so that nothing runs beside it),
    and count parameters and FLOPs.

    Returns:
        list[dict]: Per spec: ``spec``, ``params`` (M), ``gflops`` (per
        image, NaN without ``flops``), ``infer`` / ``train`` (seconds per
        round), ``memory`` (see :func:`measure_memory`, None without
        ``memory``).
    """
    if amp not in AMP_DTYPES:
        raise ValueError(f'amp={amp!r} is not supported; choose from '
                         f'{list(AMP_DTYPES)}.')
    if amp != 'none' and not str(device).startswith('cuda'):
        raise ValueError(f'amp={amp!r} is for a GPU; on {device!r} use '
                         "'none'.")
    amp = None if amp == 'none' else amp
    mem = {s.name: (measure_memory(s, batch_size, device, train, amp,
                                   threads) if memory else None)
           for s in specs}
    torch.manual_seed(0)
    models = {s.name: build_classifier(s).to(device) for s in specs}
    size = specs[0].img_size
    x = torch.randn(batch_size, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch_size, ), device=device)
    runners = {}
    for name, model in models.items():
        runners[(name, 'infer')] = inference_runner(model, x, amp)
        if train:
            runners[(name, 'train')] = train_step_runner(model, x, y, amp)
    times = time_interleaved(runners, warmup, repeats, device)
    rows = []
    for s in specs:
        model = models[s.name]
        rows.append(dict(
            spec=s,
            params=sum(p.numel() for p in model.parameters()) / 1e6,
            gflops=(count_flops(model, size, device) / 1e9 if flops
                    else float('nan')),
            infer=times[(s.name, 'infer')],
            train=times.get((s.name, 'train')),
            memory=mem[s.name]))
    return rows


def _peer_row(rows, row, impl):
    for r in rows:
        if r['spec'].impl == impl and r['spec'].group == row['spec'].group \
                and r['spec'].arch == row['spec'].arch:
            return r
    return None


def _fmt_ratio(r) -> str:
    return f"{r['median']:.2f}x ({r['low']:.2f}-{r['high']:.2f})"


def _fmt_mib(value) -> str:
    return 'n/a' if value is None or math.isnan(value) else f'{value:.0f}'


def to_markdown(rows: Sequence[dict], batch_size: int,
                peers: Sequence[str] = ('timm', 'mmpretrain'),
                note: str = '') -> str:
    """The table: per model its size, throughput (inference and training
    step) with the ratio to each peer of its group, and peak memory."""
    train = rows[0]['train'] is not None
    cuda = any(r['memory'] and not math.isnan(r['memory']['infer']['cuda_mib'])
               for r in rows)
    mem_kind = 'CUDA' if cuda else 'RSS'
    cols = ['arch', 'model', 'params (M)', 'GFLOPs', 'infer img/s']
    cols += [f'infer vs {p}' for p in peers]
    if train:
        cols += ['train img/s'] + [f'train vs {p}' for p in peers]
    cols += [f'peak {mem_kind} infer (MiB)']
    if train:
        cols += [f'peak {mem_kind} train step (MiB)']
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    key = 'cuda_mib' if cuda else 'rss_mib'
    for row in rows:
        s = row['spec']
        gflops = row['gflops']
        cells = [s.arch, s.name, f"{row['params']:.2f}",
                 'n/a' if math.isnan(gflops) else f'{gflops:.2f}',
                 f"{batch_size / statistics.median(row['infer']):.1f}"]
        phases = ['infer'] + (['train'] if train else [])
        for phase in phases:
            if phase == 'train':
                cells.append(
                    f"{batch_size / statistics.median(row['train']):.1f}")
            for p in peers:
                peer = _peer_row(rows, row, p)
                cells.append('-' if peer is None else _fmt_ratio(
                    ratio(peer[phase], row[phase])))
        for phase in phases:
            m = row['memory']
            cells.append(_fmt_mib(m[phase][key] if m else None))
        lines.append('| ' + ' | '.join(cells) + ' |')
    if note:
        lines += ['', note]
    return '\n'.join(lines)


def _child_main(argv: List[str]) -> int:
    result = _memory_child(json.loads(argv[0]))
    print(_RESULT_MARKER)
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(_child_main(sys.argv[1:]))
