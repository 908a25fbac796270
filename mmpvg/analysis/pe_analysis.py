# Copyright (c) mmpvg contributors. All rights reserved.
"""The paper's position-embedding analysis, on any mmpvg backbone family
(:class:`~mmpvg.models.backbones.base.PEBackbone`).

For every block ``l`` the analysis records, averaged over a batch of
images:

- the token map ``LN_l(x_l)``: the output of ``blocks[l].norm1``, i.e. the
  attention input of block ``l`` before the PE is added (N x D);
- the PE map actually added there, ``pe.layers[l]`` (N x D), or nothing when
  block ``l`` receives no PE;
- the Pearson correlation of the two maps, flattened (the paper's Fig. 2/4).

And at the end of the network (the paper's appendix):

- the variance of the Last-LN bias ``norm.bias`` (population variance,
  ``ddof=0``);
- the cosine similarity of the token average before and after the Last LN,
  and for models with a Last-LN PE term (MPVG) after LN + LN'_last(pos_k);
- per-token L2-norm maps (h x w) before and after the Last LN (and after
  the Last-LN PE term where there is one), averaged over the images.

Rows of the maps: by default only the patch-token rows (N = h * w) are kept.
With a class token (``cls``, ``lape``) its row of ``LN_l(x_l)`` and of the
PE is dropped before averaging and correlating, so that the maps of all
modes have the same rows; ``include_cls_token=True`` keeps it as row 0. The
token averages and the norm maps always use the patch tokens only (what GAP
pools and what forms the h x w grid).

The images go through the backbone's own ``forward_stem``,
``forward_blocks`` and ``forward_tail`` once; ``LN_l(x_l)`` and
``LN_last(x_L)`` are read with forward hooks on ``blocks[l].norm1`` and
``norm`` while they run, so nothing of the forward pass is re-implemented.
An :class:`MPVGViTAdapter` is refused: its ViT alone, without the
injectors, is not the network that was trained.

Staged backbones (Swin) have blocks on different token grids and widths:
block ``l``'s maps are (N_s x C_s) of its stage ``s``. The report says, for
every stage, its grid, width and blocks (``stages``), and for every block
its stage; ``token_maps`` is then a list of per-block maps instead of one
(L, N, D) tensor. Single-stage models (ViT) report one stage.

Models without a layer-wise PE (``cls``, ``gap`` and any model built with
``layerwise_pe=False``) report ``layerwise_pe: false`` and ``null``
correlations with a note; asking them for a PE map raises ``ValueError``.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from mmpvg.models import PEBackbone

__all__ = [
    'PAPER_LAYERS', 'PEAnalysis', 'analyze_pe', 'default_layers',
    'has_layerwise_pe', 'layer_pe_map', 'pearson_correlation'
]

PAPER_LAYERS = (1, 4, 7, 11)


def _check_backbone(backbone) -> PEBackbone:
    if not isinstance(backbone, PEBackbone):
        hint = ''
        if isinstance(getattr(backbone, 'backbone', None), PEBackbone):
            hint = ' (pass model.backbone)'
        elif isinstance(getattr(backbone, 'vit', None), PEBackbone):
            hint = (': a ViT-Adapter runs its ViT between injectors, so its '
                    "ViT alone is not the trained network; analyse the "
                    'classifier checkpoint it was initialised from instead')
        raise TypeError('The PE analysis needs an mmpvg backbone (MPVGViT or '
                        'another PEBackbone family), got '
                        f'{type(backbone).__name__}{hint}.')
    return backbone


def has_layerwise_pe(backbone: PEBackbone) -> bool:
    """True if some block of ``backbone`` receives a PE at its attention
    input."""
    _check_backbone(backbone)
    return bool(backbone.pe.layerwise and backbone.pe.pe_blocks)


def _no_layerwise_pe_message(backbone: PEBackbone) -> str:
    where = []
    if backbone.pe.pe_at_input:
        where.append('once at the input (x_0 = p + pos_0)')
    if backbone.pe.has_last_term:
        where.append('after the Last LN')
    where = ' and '.join(where) or 'nowhere'
    return (f'pe_mode={backbone.pe_mode!r} (layerwise_pe=False) has no '
            'layer-wise PE: no block receives a PE at its attention input; '
            f'its PE enters {where}.')


def _layer_index(layer: int, num_layers: int) -> int:
    if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool):
        raise TypeError(f'layer must be an int, got {layer!r}.')
    if not -num_layers <= layer < num_layers:
        raise ValueError(f'layer {layer} is out of range for a model with '
                         f'{num_layers} blocks (0..{num_layers - 1}).')
    return int(layer) % num_layers


def _rows(t: torch.Tensor, num_extra: int, include_cls_token: bool):
    """Drop the class-token row(s) of a (..., rows, D) tensor unless kept."""
    return t if include_cls_token else t[..., num_extra:, :]


def pearson_correlation(a, b) -> float:
    """Pearson correlation of two arrays of equal size, flattened (float64).

    Returns NaN when either array is constant.
    """
    a = torch.as_tensor(a, dtype=torch.float64).flatten()
    b = torch.as_tensor(b, dtype=torch.float64).flatten()
    if a.numel() != b.numel():
        raise ValueError(f'Cannot correlate maps of {a.numel()} and '
                         f'{b.numel()} elements.')
    a = a - a.mean()
    b = b - b.mean()
    denom = torch.sqrt((a * a).sum() * (b * b).sum())
    if denom == 0:
        return float('nan')
    return float((a * b).sum() / denom)


@torch.no_grad()
def layer_pe_map(backbone: PEBackbone,
                 layer: int,
                 patch_resolution: Optional[Sequence[int]] = None,
                 include_cls_token: bool = False) -> torch.Tensor:
    """The PE that block ``layer`` adds to LN_l(x_l), as an (N, D) tensor.

    Args:
        backbone (PEBackbone): The model.
        layer (int): Block index (0-based; negative counts from the end).
        patch_resolution (tuple[int, int], optional): Token grid (of the
            first stage); defaults to the grid the PE is stored for.
        include_cls_token (bool): Keep the class-token row (row 0).

    Raises:
        ValueError: If the model has no layer-wise PE, or block ``layer``
            receives none (e.g. block 0 of PVG/MPVG).
    """
    _check_backbone(backbone)
    if not has_layerwise_pe(backbone):
        raise ValueError('No PE map to return: ' +
                         _no_layerwise_pe_message(backbone))
    index = _layer_index(layer, backbone.num_layers)
    hw = tuple(patch_resolution or backbone.pe.patch_resolution)
    transitions = ()
    if len(backbone.pe.stage_depths) > 1:
        # a staged PE crosses stage boundaries through the backbone's merges
        if not hasattr(backbone, 'pe_transitions'):
            raise TypeError(
                f'{type(backbone).__name__} has a staged PE but no '
                'pe_transitions() giving its stage transitions.')
        transitions = backbone.pe_transitions()
    pe = backbone.pe(hw, transitions).layers[index]
    if pe is None:
        raise ValueError(
            f'Block {index} of pe_mode={backbone.pe_mode!r} receives no PE; '
            f'the blocks with a layer-wise PE are {backbone.pe.pe_blocks}.')
    return _rows(pe[0], backbone.num_extra_tokens, include_cls_token)


def _finite(value: Optional[float]) -> Optional[float]:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _cosine_stats(cos: Optional[torch.Tensor], mean_a: Optional[torch.Tensor],
                  mean_b: Optional[torch.Tensor]) -> Optional[dict]:
    if cos is None:
        return None
    batch_cos = torch.nn.functional.cosine_similarity(mean_a, mean_b, dim=0)
    return dict(
        per_image_mean=_finite(float(cos.mean())),
        per_image_std=_finite(float(cos.std(unbiased=False))),
        of_batch_mean=_finite(float(batch_cos)))


@dataclass
class PEAnalysis:
    """Everything :func:`analyze_pe` measures (tensors are float64, CPU).

    Attributes:
        pe_mode (str): The backbone's ``pe_mode``.
        num_images (int): Images averaged over.
        patch_resolution (tuple[int, int]): Token grid (h, w) of the
            images (of the first stage in a staged backbone).
        with_cls_token (bool): The model has a class token.
        include_cls_token (bool): Row 0 of the maps is the class token.
        layerwise_pe (bool): Some block receives a PE at its attention input.
        pe_blocks (list[int]): The blocks that do.
        pe_at_input (bool): pos_0 is added to the tokens before block 0.
        last_ln_pe (int | None): k of the Last-LN PE term LN'_last(pos_k).
        final_norm (bool): The model has a Last LN.
        token_maps (Tensor | list[Tensor]): (L, rows, D) batch-averaged
            LN_l(x_l); for a staged backbone a list of (rows_s, D_s) maps,
            one per block.
        pe_maps (list[Tensor | None]): (rows, D) PE added at block l.
        correlations (list[float | None]): Pearson(token map, PE map) per
            block; ``None`` where block l receives no PE (NaN if a map is
            constant).
        last_ln_bias_variance (float | None): Population variance of
            ``norm.bias``; ``None`` without a Last LN (or bias).
        cosine_ln (dict | None): Cosine of the patch-token average before
            vs. after the Last LN: ``per_image_mean`` / ``per_image_std``
            over the images, and ``of_batch_mean`` (the cosine of the two
            averages taken over tokens and images).
        cosine_ln_pe (dict | None): The same, before vs. after LN + the
            Last-LN PE term; ``None`` without that term.
        norm_map_before_ln (Tensor): (h, w) mean per-token L2 norm of x_L.
        norm_map_after_ln (Tensor | None): The same of LN_last(x_L).
        norm_map_after_ln_pe (Tensor | None): The same of
            LN_last(x_L) + LN'_last(pos_k).
        stage_of_block (list[int]): The stage of each block (all 0 for a
            single-stage model).
        stage_hw (list[tuple[int, int]]): The token grid of each stage (the
            norm maps have the last one).
        stage_dims (list[int]): The width of each stage.
    """
    pe_mode: str
    num_images: int
    patch_resolution: tuple
    embed_dims: int
    num_layers: int
    with_cls_token: bool
    include_cls_token: bool
    layerwise_pe: bool
    pe_blocks: List[int]
    pe_at_input: bool
    last_ln_pe: Optional[int]
    final_norm: bool
    token_maps: Union[torch.Tensor, List[torch.Tensor]]
    pe_maps: List[Optional[torch.Tensor]]
    correlations: List[Optional[float]]
    last_ln_bias_variance: Optional[float]
    cosine_ln: Optional[dict]
    cosine_ln_pe: Optional[dict]
    norm_map_before_ln: torch.Tensor
    norm_map_after_ln: Optional[torch.Tensor]
    norm_map_after_ln_pe: Optional[torch.Tensor]
    notes: Dict[str, str] = field(default_factory=dict)
    stage_of_block: List[int] = field(default_factory=list)
    stage_hw: List[tuple] = field(default_factory=list)
    stage_dims: List[int] = field(default_factory=list)

    def token_map(self, layer: int) -> torch.Tensor:
        """Batch-averaged LN_l(x_l) of block ``layer``, (rows, D)."""
        return self.token_maps[_layer_index(layer, self.num_layers)]

    def pe_map(self, layer: int) -> torch.Tensor:
        """The PE added at block ``layer``, (rows, D).

        Raises:
            ValueError: If the model has no layer-wise PE or this block
                receives none.
        """
        index = _layer_index(layer, self.num_layers)
        if not self.layerwise_pe:
            raise ValueError(
                f'No PE map to return: pe_mode={self.pe_mode!r} '
                '(layerwise_pe=False) has no layer-wise PE; no block '
                'receives a PE at its attention input.')
        if self.pe_maps[index] is None:
            raise ValueError(
                f'Block {index} of pe_mode={self.pe_mode!r} receives no PE; '
                f'the blocks with a layer-wise PE are {self.pe_blocks}.')
        return self.pe_maps[index]

    @property
    def token_rows(self) -> str:
        if self.with_cls_token and self.include_cls_token:
            return 'cls+patch'
        return 'patch'

    def to_dict(self) -> dict:
        """JSON-ready numbers (maps of N x D are summarised, not listed)."""
        layers = []
        for i in range(self.num_layers):
            tok = self.token_maps[i]
            pe = self.pe_maps[i]
            layers.append(dict(
                index=i,
                stage=self.stage_of_block[i],
                has_pe=pe is not None,
                correlation=_finite(self.correlations[i]),
                token_map_mean=float(tok.mean()),
                token_map_std=float(tok.std(unbiased=False)),
                pe_map_mean=None if pe is None else float(pe.mean()),
                pe_map_std=(None if pe is None else
                            float(pe.std(unbiased=False)))))

        def grid(t):
            return None if t is None else t.tolist()

        return dict(
            pe_mode=self.pe_mode,
            num_images=self.num_images,
            patch_resolution=list(self.patch_resolution),
            embed_dims=self.embed_dims,
            num_layers=self.num_layers,
            with_cls_token=self.with_cls_token,
            token_rows=self.token_rows,
            # rows of the maps of block 0 (of every block in one stage)
            num_token_rows=int(self.token_maps[0].shape[0]),
            stages=[
                dict(index=s, grid=list(hw), embed_dims=dims,
                     blocks=[b for b, t in enumerate(self.stage_of_block)
                             if t == s])
                for s, (hw, dims) in enumerate(
                    zip(self.stage_hw, self.stage_dims))
            ],
            layerwise_pe=self.layerwise_pe,
            pe_blocks=list(self.pe_blocks),
            pe_at_input=self.pe_at_input,
            last_ln_pe=self.last_ln_pe,
            correlation=[_finite(c) for c in self.correlations],
            layers=layers,
            last_ln=dict(
                final_norm=self.final_norm,
                bias_variance=_finite(self.last_ln_bias_variance),
                cosine_before_after_ln=self.cosine_ln,
                cosine_before_after_ln_pe=self.cosine_ln_pe,
                norm_map_before_ln=grid(self.norm_map_before_ln),
                norm_map_after_ln=grid(self.norm_map_after_ln),
                norm_map_after_ln_pe=grid(self.norm_map_after_ln_pe)),
            notes=dict(self.notes))


class _Accumulator:
    """Float64 sums over images, so that chunked batches average exactly."""

    def __init__(self):
        self.sums: Dict[str, torch.Tensor] = {}
        self.lists: Dict[str, List[torch.Tensor]] = {}

    def add(self, name: str, value: torch.Tensor):
        value = value.detach().to('cpu', torch.float64).sum(0)
        if name in self.sums:
            self.sums[name] += value
        else:
            self.sums[name] = value

    def extend(self, name: str, value: torch.Tensor):
        self.lists.setdefault(name, []).append(
            value.detach().to('cpu', torch.float64))

    def mean(self, name: str, count: int) -> Optional[torch.Tensor]:
        return self.sums[name] / count if name in self.sums else None

    def cat(self, name: str) -> Optional[torch.Tensor]:
        return torch.cat(self.lists[name]) if name in self.lists else None


def _record_output(module, store: list):
    return module.register_forward_hook(
        lambda module, args, output: store.append(output))


@torch.no_grad()
def _walk(backbone: PEBackbone, images: torch.Tensor, acc: _Accumulator,
          include_cls_token: bool):
    """One pass through the backbone's own stem, blocks and tail; hooks read
    LN_l(x_l) (each block's ``norm1``) and LN_last(x_L) (``norm``)."""
    bb = backbone
    extra = bb.num_extra_tokens
    norms = bb.attention_norms()
    captured = [[] for _ in norms]
    last_ln: list = []
    handles = [_record_output(norm, store)
               for norm, store in zip(norms, captured)]
    if bb.final_norm:
        handles.append(_record_output(bb.last_ln, last_ln))
    try:
        x, grid = bb.forward_stem(images)
        x = bb.forward_blocks(x, grid)  # x_L
        out = bb.forward_tail(x, grid)
    finally:
        for handle in handles:
            handle.remove()
    for i, store in enumerate(captured):
        if len(store) != 1:
            raise RuntimeError(
                f'LN_{i} (block {i}) ran {len(store)} times in one forward '
                'pass; the analysis expects it to be the attention-input LN '
                'that runs once.')
        acc.add(f'token_{i}', _rows(store[0], extra, include_cls_token))

    patches = x[:, extra:]  # x_L, patch tokens
    acc.add('norm_before', patches.norm(dim=-1))
    mean_before = patches.mean(1)
    acc.add('avg_before', mean_before)
    # the per-token measurements need a Last LN over the tokens; CeiT's
    # normalises the one token its layer-wise class attention pools
    if bb.final_norm and _per_token_last_ln(last_ln[0], x):
        y_patches = last_ln[0][:, extra:]
        acc.add('norm_after', y_patches.norm(dim=-1))
        mean_after = y_patches.mean(1)
        acc.add('avg_after', mean_after)
        acc.extend('cos_ln', torch.nn.functional.cosine_similarity(
            mean_before.double(), mean_after.double(), dim=-1))
        if grid.pe.last is not None:
            z_patches = out[:, extra:]  # LN_last(x_L) + LN'_last(pos_k)
            acc.add('norm_after_pe', z_patches.norm(dim=-1))
            mean_after_pe = z_patches.mean(1)
            acc.add('avg_after_pe', mean_after_pe)
            acc.extend('cos_ln_pe', torch.nn.functional.cosine_similarity(
                mean_before.double(), mean_after_pe.double(), dim=-1))
    return grid.stage_hw, grid.pe


def _per_token_last_ln(last_ln_out: torch.Tensor, x: torch.Tensor) -> bool:
    return last_ln_out.ndim == 3 and last_ln_out.shape[1] == x.shape[1]


@torch.no_grad()
def analyze_pe(backbone: PEBackbone,
               images: torch.Tensor,
               batch_size: int = 32,
               include_cls_token: bool = False) -> PEAnalysis:
    """Run the paper's PE analysis of ``backbone`` on ``images``.

    Args:
        backbone (PEBackbone): The model. It is run in eval mode (no dropout or
            drop path); its train/eval state is restored afterwards.
        images (Tensor): Preprocessed images (B, C, H, W), all of one size,
            on any device (moved to the backbone's).
        batch_size (int): Images per forward pass; the averages are exact
            whatever the chunking.
        include_cls_token (bool): Keep the class-token row as row 0 of the
            token and PE maps (models with a class token only). Defaults to
            False: the maps and correlations use the patch-token rows.

    Returns:
        PEAnalysis: The measurements.
    """
    bb = _check_backbone(backbone)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError('images must be a (B, C, H, W) tensor, got '
                         f'{getattr(images, "shape", type(images))}.')
    if images.shape[0] == 0:
        raise ValueError('images is empty: the analysis needs at least one '
                         'image.')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    include_cls = bool(include_cls_token and bb.with_cls_token)

    param = next(bb.parameters())
    images = images.to(param.device, param.dtype)
    was_training = bb.training
    bb.eval()
    acc = _Accumulator()
    try:
        for start in range(0, images.shape[0], batch_size):
            stage_hw, pe = _walk(bb, images[start:start + batch_size], acc,
                                 include_cls)
    finally:
        bb.train(was_training)
    count = images.shape[0]

    L = bb.num_layers
    token_maps = [acc.mean(f'token_{i}', count) for i in range(L)]
    stage_of_block = list(bb.pe.stage_of_block)
    if len(set(stage_of_block)) == 1:  # one grid and width: one tensor
        token_maps = torch.stack(token_maps)
    layerwise = has_layerwise_pe(bb)
    notes = {}
    extra = bb.num_extra_tokens
    if bb.with_cls_token:
        notes['token_rows'] = (
            'Row 0 of the maps is the class token.' if include_cls else
            'The class-token row of LN_l(x_l) and of the PE is excluded; '
            'maps and correlations use the patch-token rows only.')
    pe_maps: List[Optional[torch.Tensor]] = []
    correlations: List[Optional[float]] = []
    for i in range(L):
        p = pe.layers[i]
        if p is None:
            pe_maps.append(None)
            correlations.append(None)
            continue
        p = _rows(p[0], extra, include_cls).detach().to('cpu', torch.float64)
        pe_maps.append(p)
        correlations.append(pearson_correlation(token_maps[i], p))
    if not layerwise:
        notes['correlation'] = _no_layerwise_pe_message(bb) + (
            ' Per-layer correlations are null.')
    elif len(bb.pe.pe_blocks) < L:
        missing = [i for i in range(L) if pe.layers[i] is None]
        notes['correlation'] = (
            f'Blocks {missing} receive no PE (the chain starts at block '
            f'{bb.pe.pe_blocks[0]}); their correlations are null.')

    h, w = stage_hw[-1]  # the grid the Last LN sees

    def grid(name):
        m = acc.mean(name, count)
        return None if m is None else m.reshape(h, w)

    bias = getattr(bb.last_ln, 'bias', None) if bb.final_norm else None
    bias_var = (None if bias is None else
                float(bias.detach().double().var(unbiased=False)))
    if not bb.final_norm:
        notes['last_ln'] = ('final_norm=False: the model has no Last LN; only '
                            'the norm map before it is reported.')
    elif acc.mean('norm_after', count) is None:
        notes['last_ln'] = (
            'The Last LN normalises a pooled token (e.g. the output of '
            "CeiT's layer-wise class attention), not each token: the norm "
            'maps after it and the cosines of the token average do not '
            'apply; only the norm map before it and the bias variance are '
            'reported.')
    cosine_ln = _cosine_stats(acc.cat('cos_ln'), acc.mean('avg_before', count),
                              acc.mean('avg_after', count))
    cosine_ln_pe = _cosine_stats(acc.cat('cos_ln_pe'),
                                 acc.mean('avg_before', count),
                                 acc.mean('avg_after_pe', count))
    return PEAnalysis(
        pe_mode=bb.pe_mode,
        num_images=count,
        patch_resolution=tuple(stage_hw[0]),
        embed_dims=bb.embed_dims,
        num_layers=L,
        with_cls_token=bb.with_cls_token,
        include_cls_token=include_cls,
        layerwise_pe=layerwise,
        pe_blocks=list(bb.pe.pe_blocks),
        pe_at_input=bool(bb.pe.pe_at_input),
        last_ln_pe=bb.pe.last_ln_pe if bb.pe.has_last_term else None,
        final_norm=bool(bb.final_norm),
        token_maps=token_maps,
        pe_maps=pe_maps,
        correlations=correlations,
        last_ln_bias_variance=bias_var,
        cosine_ln=cosine_ln,
        cosine_ln_pe=cosine_ln_pe,
        norm_map_before_ln=grid('norm_before'),
        norm_map_after_ln=grid('norm_after'),
        norm_map_after_ln_pe=grid('norm_after_pe'),
        notes=notes,
        stage_of_block=stage_of_block,
        stage_hw=[tuple(hw) for hw in stage_hw],
        stage_dims=list(bb.pe.stage_dims))


def default_layers(num_layers: int) -> List[int]:
    """The paper's layers 1, 4, 7, 11 when they exist, else up to four
    evenly spaced blocks."""
    if num_layers > max(PAPER_LAYERS):
        return list(PAPER_LAYERS)
    count = min(4, num_layers)
    if count == 1:
        return [0]
    return sorted({round(i * (num_layers - 1) / (count - 1))
                   for i in range(count)})
