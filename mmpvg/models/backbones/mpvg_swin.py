# Copyright (c) mmpvg contributors. All rights reserved.
"""MPVGSwin: Swin Transformer with the position-embedding structures of MPVG.

A subclass of mmpretrain's ``SwinTransformer`` (same modules and state-dict
names: ``patch_embed``, ``stages.{s}.blocks.{j}``, ``stages.{s}.downsample``,
``norm{i}``), so mmpretrain Swin checkpoints load. Swin has no class token;
the paper's Default Swin already pools by GAP and uses an absolute PE *and*
the relative position bias (kept in every mode). What the modes change:

- ``gap`` (the Default): x_0 = p + pos_0, plain Swin blocks.
- ``lape``: x_0 = p (no PE at the input); every block ``l`` attends over
  ``LN_l(x) + pos_{l+1}`` with ``pos_{l+1} = LN'_l(pos_l)``.
- ``pvg``: x_0 = p + pos_0 and the layer-wise chain in every block, block 0
  included ("in the case of Swin ... both PVG and MPVG exceptionally
  include layer 0").
- ``mpvg``: PVG + ``LN'_last(pos_0 -> last grid)`` added after ``norm3``,
  before GAP.

The PE is added to ``LN_1(x)`` before windowing and the cyclic shift, like
the tokens. Where a stage ends, the PE goes through that stage's own
PatchMerging (the tokens' module, no new parameters):
``pos <- LN'_next(Merge_s(pos))``.

mmpretrain's models import mmdet and mmcv.ops, so ``import mmpvg`` does not
import this module: it is registered lazily (:func:`mmpvg.registry.
register_lazy`) and imported when a config builds ``MPVGSwin`` or when
``mmpvg.models.MPVGSwin`` is first accessed.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmpretrain.models.backbones.swin_transformer import SwinTransformer
from mmpretrain.models.utils.attention import WindowMSA

from mmpvg.registry import register_model
from mmpvg.utils.checks import check_backbone_args
from mmpvg.utils.grid import token_grid
from ..layers import (LayerwisePositionEmbedding, PositionEmbeddings,
                      resolve_pe_switches)
from .base import PEBackbone

# What each ``pe_mode`` means for Swin (no class token; the chain of PVG and
# MPVG starts at block 0, see the module docstring).
SWIN_PE_MODES = {
    'gap': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=False,
                pe_first_block=False, hierarchical_pe=True, last_ln_pe=None),
    'lape': dict(with_cls_token=False, pe_at_input=False, layerwise_pe=True,
                 pe_first_block=True, hierarchical_pe=True, last_ln_pe=None),
    'pvg': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=True,
                pe_first_block=True, hierarchical_pe=True, last_ln_pe=None),
    'mpvg': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=True,
                 pe_first_block=True, hierarchical_pe=True, last_ln_pe=0),
}
LAST_LN_PE_SOURCES = ('pos_0', 'last_stage_input')


class SDPAWindowMSA(WindowMSA):
    """mmpretrain's ``WindowMSA`` (same parameters and buffers) computed with
    ``F.scaled_dot_product_attention``; the relative position bias and the
    shifted-window mask form its additive attention mask."""

    def forward(self, x: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        B_, N, C = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).reshape(B_, N, 3, h, C // h).permute(
            2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[
            self.relative_position_index.view(-1)].view(N, N, h).permute(
                2, 0, 1).unsqueeze(0)  # (1, h, N, N)
        if mask is not None:
            # windows are batch-major, (B * nW); fold the windows into the
            # head axis so that one (1, nW * h, N, N) mask broadcasts over
            # the batch (4-D masks keep SDPA on its fused CPU/GPU kernels)
            nW = mask.shape[0]
            q, k, v = (t.reshape(B_ // nW, nW * h, N, C // h)
                       for t in (q, k, v))
            bias = (bias + mask.unsqueeze(1).to(bias)).reshape(
                1, nW * h, N, N)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype),
            dropout_p=self.attn_drop.p if self.training else 0.,
            scale=self.scale)
        x = x.reshape(B_, h, N, C // h).transpose(1, 2).reshape(B_, N, C)
        return self.proj_drop(self.proj(x))


class SwinGrid(NamedTuple):
    """What every part of one forward pass of :class:`MPVGSwin` shares.

    Attributes:
        hw (tuple[int, int]): The token grid of the first stage.
        pe (PositionEmbeddings): Every PE of that grid (per-block PEs at
            their stage's grid and width).
        num_extra_tokens (int): Always 0 (Swin has no class token).
        stage_hw (tuple[tuple[int, int]]): The token grid of each stage.
    """
    hw: Tuple[int, int]
    pe: PositionEmbeddings
    num_extra_tokens: int
    stage_hw: Tuple[Tuple[int, int], ...]


def merged_grid(merge: nn.Module, hw: Sequence[int]) -> Tuple[int, int]:
    """The grid mmcv's ``PatchMerging`` ``merge`` outputs for an ``hw`` grid
    (its adaptive padding, then its unfold), without running it."""
    H, W = hw
    if merge.adaptive_padding is not None:
        pad_h, pad_w = merge.adaptive_padding.get_pad_shape((H, W))
        H, W = H + pad_h, W + pad_w
    s = merge.sampler
    return tuple(
        (size + 2 * s.padding[i] - s.dilation[i] * (s.kernel_size[i] - 1) - 1)
        // s.stride[i] + 1 for i, size in enumerate((H, W)))


@register_model(force=True)  # replaces the stand-in of register_lazy
class MPVGSwin(SwinTransformer, PEBackbone):
    """Swin Transformer with the PE structures of MPVG and its baselines.

    A PyTorch implementation of the Swin-Ti experiments of `Maximizing the
    Position Embedding for Vision Transformers with Global Average Pooling
    <https://arxiv.org/abs/2502.02919>`_ (AAAI 2025), on mmpretrain's
    ``SwinTransformer`` (its modules, names and checkpoints).

    pos_0 is the absolute PE (``pe.pos_embed``, (1, h * w, C_0), trunc-normal
    std 0.02), held by a :class:`LayerwisePositionEmbedding` with one PE
    LayerNorm per block at its stage's width. Loading a checkpoint, its
    ``absolute_pos_embed`` (mmpretrain's name, ``use_abs_pos_embed=True``) is
    read as ``pe.pos_embed`` (logged) and resized to this model's grid. A
    checkpoint without it (mmpretrain's default ``use_abs_pos_embed=False``)
    leaves ``pe.pos_embed`` as initialised and reports it among the missing
    keys, as mmengine reports any missing key (``strict=True`` refuses it):
    every mode here uses pos_0, so check that report.

    ``num_layers`` is the number of *blocks* (12 for tiny), as every mmpvg
    backbone family counts it; ``num_stages`` the number of stages.

    Args:
        arch (str | dict): mmpretrain's Swin arch: 'tiny', 'small', 'base',
            'large', or a dict with ``embed_dims``, ``depths`` and
            ``num_heads``. Defaults to 'tiny'.
        pe_mode (str): 'gap' (the paper's Default Swin), 'lape', 'pvg' or
            'mpvg'. 'cls' is an error: Swin has no class token.
            Defaults to 'mpvg'.
        pe_at_input (bool, optional): Add pos_0 after the patch embedding
            (False for 'lape'). ``None`` follows ``pe_mode``.
        layerwise_pe (bool, optional): Per-block PE at the attention input
            ('lape', 'pvg', 'mpvg').
        pe_first_block (bool, optional): With ``layerwise_pe``, block 0 gets
            a PE too (True in every Swin mode, as the paper says);
            ``False`` starts the chain at block 1.
        hierarchical_pe (bool, optional): Chain the PE LayerNorms
            (``pos_l = LN'_l(pos_{l-1})``, through the merges); ``False``
            gives every block ``LN'_l(pos_0)``, pos_0 merged to its stage.
        last_ln_pe (int | bool, optional): k such that ``LN'_last(pos_k)``
            (pos_k brought to the last grid through the remaining merges) is
            added after the Last LN ``norm{last}``; ``False`` disables it,
            ``True`` means 0. 'mpvg' uses 0. Give either this or
            ``last_ln_pe_source``.
        last_ln_pe_source (str, optional): The paper does not say which PE
            of a staged model reaches the Last LN (a reading):
            'pos_0' (default reading: the raw pos_0 through every
            PatchMerging) or 'last_stage_input' (the alternative: the PE of
            the last block before the last stage, merged into the last
            stage, i.e. the PE entering stage 3 of Swin-Ti). Needs a Last-LN
            term; ``None`` means 'pos_0'.
        img_size (int | tuple): Input size pos_0 is stored for; other sizes
            are interpolated. Defaults to 224.
        patch_size (int | tuple): Patch size. Defaults to 4.
        in_channels (int): Image channels. Defaults to 3.
        window_size (int): Attention window. Defaults to 7.
        drop_rate (float): Dropout after the PE. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linear over all blocks.
            Defaults to 0.1 (the ImageNet configs use 0.2).
        out_indices (Sequence[int]): Stages to output, each through its
            ``norm{i}``. The last stage's norm is the Last LN. Defaults to
            (3, ); the default arch's last stage.
        out_after_downsample (bool): Output a stage after its PatchMerging.
            Defaults to False.
        interpolate_mode (str): pos_0 resize mode. Defaults to 'bicubic'.
        with_cp (bool): Gradient checkpointing of each block.
            Defaults to False.
        frozen_stages (int): As mmpretrain's SwinTransformer, stages
            count from 0: ``k >= 0`` freezes the stem (patch embedding and
            pos_0; mmpretrain leaves its ``absolute_pos_embed`` trainable)
            and stages 0..k with their blocks' PE LayerNorms and the output
            norms ``norm{i}`` of those stages; -1 freezes nothing. (Unlike
            the plain ViT families, where k counts blocks and 0 freezes
            nothing, again as in mmpretrain.)
        norm_eval (bool): Keep BatchNorms in eval mode (as mmpretrain).
            Defaults to False.
        pad_small_map (bool): As mmpretrain's Swin (pad maps smaller than the
            window). Defaults to False.
        norm_cfg (dict): Config of the output norms ``norm{i}`` (the
            blocks' own norms are mmpretrain's LN); ``None`` makes them
            identities. Defaults to ``dict(type='LN')``.
        pe_norm_cfg (dict, optional): Config of the PE LayerNorms LN'_l and
            LN'_last. The paper gives none for Swin (a reading): ``None``
            uses ``norm_cfg`` (``dict(type='LN')`` if that is ``None``),
            i.e. Swin's LayerNorm with eps 1e-5, where the DeiT models use
            eps 1e-6.
        patch_cfg (dict): Extra config of the patch embedding.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 pe_mode: str = 'mpvg',
                 pe_at_input: Optional[bool] = None,
                 layerwise_pe: Optional[bool] = None,
                 pe_first_block: Optional[bool] = None,
                 hierarchical_pe: Optional[bool] = None,
                 last_ln_pe: Optional[Union[int, bool]] = None,
                 last_ln_pe_source: Optional[str] = None,
                 img_size=224,
                 patch_size=4,
                 in_channels: int = 3,
                 window_size: int = 7,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Sequence[int] = (3, ),
                 out_after_downsample: bool = False,
                 interpolate_mode: str = 'bicubic',
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 pad_small_map: bool = False,
                 norm_cfg: Optional[dict] = dict(type='LN'),
                 pe_norm_cfg: Optional[dict] = None,
                 patch_cfg: dict = dict(),
                 init_cfg: Optional[dict] = None):
        if pe_mode == 'cls':
            raise ValueError(
                "pe_mode='cls' does not apply to Swin: it has no class "
                "token, its Default already pools by GAP; use pe_mode 'gap' "
                "(the Default), 'lape', 'pvg' or 'mpvg'.")
        self._check_arch(arch)
        check_backbone_args(
            img_size=img_size, patch_size=patch_size, in_channels=in_channels,
            window_size=window_size, drop_rate=drop_rate,
            drop_path_rate=drop_path_rate, interpolate_mode=interpolate_mode,
            out_indices=out_indices)
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        super().__init__(
            arch=arch, img_size=img_size, patch_size=patch_size,
            in_channels=in_channels, window_size=window_size,
            drop_rate=drop_rate, drop_path_rate=drop_path_rate,
            out_indices=self._check_out_indices(arch, out_indices),
            out_after_downsample=out_after_downsample,
            use_abs_pos_embed=False,  # pos_0 lives in self.pe
            interpolate_mode=interpolate_mode, with_cp=with_cp,
            frozen_stages=-1,  # frozen once self.pe exists
            norm_eval=norm_eval, pad_small_map=pad_small_map,
            norm_cfg=norm_cfg,
            stage_cfgs=dict(block_cfgs=dict(
                attn_cfgs=dict(window_msa=SDPAWindowMSA))),
            patch_cfg=patch_cfg, init_cfg=init_cfg)
        # mmpvg counts blocks in num_layers (mmpretrain counts stages)
        self.num_stages = len(self.depths)
        self.num_layers = sum(self.depths)
        self.stage_dims = [stage.embed_dims for stage in self.stages]
        self.img_size = tuple(self.patch_embed.init_input_size)
        self.with_cls_token = False
        self.final_norm = (self.num_stages - 1 in self.out_indices
                           and norm_cfg is not None)

        self.pe_mode = pe_mode
        sw = resolve_pe_switches(
            pe_mode, self.num_layers, modes=SWIN_PE_MODES,
            pe_at_input=pe_at_input, layerwise_pe=layerwise_pe,
            pe_first_block=pe_first_block, hierarchical_pe=hierarchical_pe,
            last_ln_pe=last_ln_pe)
        last_k = self._last_ln_source(sw, last_ln_pe, last_ln_pe_source)
        if last_k is not None and not self.final_norm:
            raise ValueError(
                'last_ln_pe adds LN\'_last(pos_k) after the Last LN '
                f'norm{self.num_stages - 1}, which exists only when the last '
                f'stage ({self.num_stages - 1}) is in out_indices and '
                f'norm_cfg is not None (got out_indices={self.out_indices}, '
                f'norm_cfg={norm_cfg}).')
        if not (sw['pe_at_input'] or sw['layerwise_pe'] or last_k is not None):
            raise ValueError(
                f'pe_mode={pe_mode!r} with pe_at_input=False, no layer-wise '
                'PE and no Last-LN PE would never use pos_0; for a Swin '
                "without absolute PE use mmpretrain's SwinTransformer.")
        self.pe_switches = dict(sw, last_ln_pe=last_k)
        self.pe = LayerwisePositionEmbedding(
            num_layers=self.depths,
            embed_dims=self.stage_dims,
            patch_resolution=self.patch_resolution,
            pe_at_input=sw['pe_at_input'],
            layerwise=sw['layerwise_pe'],
            first_block=sw['pe_first_block'],
            hierarchical=sw['hierarchical_pe'],
            last_ln_pe=last_k,
            norm_cfg=pe_norm_cfg or norm_cfg or dict(type='LN'),
            init_std=0.02,
            interpolate_mode=interpolate_mode)
        self._register_load_state_dict_pre_hook(self._read_abs_pos_embed)

        if not -1 <= frozen_stages < self.num_stages:
            raise ValueError(f'frozen_stages={frozen_stages} must be in '
                             f'[-1, {self.num_stages - 1}].')
        self.frozen_stages = frozen_stages
        self._freeze_stages()

    # ------------------------------------------------------------------ #
    # argument parsing
    # ------------------------------------------------------------------ #
    @classmethod
    def _check_arch(cls, arch):
        """mmpretrain's own check is a bare assertion; say what is
        accepted."""
        keys = {'embed_dims', 'depths', 'num_heads'}
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(
                    f'arch={arch!r} is not a Swin preset; choose from '
                    f'{sorted(cls.arch_zoo)} or pass a dict with keys '
                    f'{sorted(keys)}.')
        elif not isinstance(arch, dict) or set(arch) != keys:
            raise ValueError(f'A custom Swin arch is a dict with exactly the '
                             f'keys {sorted(keys)}, got {arch!r}.')

    @classmethod
    def _check_out_indices(cls, arch, out_indices) -> Tuple[int, ...]:
        depths = (cls.arch_zoo[arch.lower()]['depths'] if isinstance(
            arch, str) and arch.lower() in cls.arch_zoo else
                  arch.get('depths', ()) if isinstance(arch, dict) else ())
        num_stages = len(depths)
        if num_stages and any(not 0 <= i < num_stages for i in out_indices):
            raise ValueError(
                f'out_indices={tuple(out_indices)} must be stage indices in '
                f'[0, {num_stages - 1}].')
        return tuple(out_indices)

    def _last_ln_source(self, sw: dict, last_ln_pe,
                        source: Optional[str]) -> Optional[int]:
        """k of LN'_last(pos_k), from ``last_ln_pe`` or ``last_ln_pe_source``.
        """
        if source is None:
            return sw['last_ln_pe']
        if source not in LAST_LN_PE_SOURCES:
            raise ValueError(f'last_ln_pe_source={source!r} is not supported;'
                             f' choose from {LAST_LN_PE_SOURCES}.')
        if last_ln_pe is not None and not isinstance(last_ln_pe, bool):
            raise ValueError(
                f'Give either last_ln_pe={last_ln_pe!r} (a chain index) or '
                f'last_ln_pe_source={source!r}, not both.')
        if sw['last_ln_pe'] is None:
            raise ValueError(
                f'last_ln_pe_source={source!r} chooses the PE of the Last-LN '
                f'term, which pe_mode={self.pe_mode!r} does not have (use '
                "pe_mode 'mpvg' or last_ln_pe=True).")
        if source == 'pos_0':
            return 0
        if self.num_stages < 2 or not sw['layerwise_pe']:
            raise ValueError(
                "last_ln_pe_source='last_stage_input' needs a layer-wise PE "
                'chain and at least two stages.')
        last_block = sum(self.depths[:-1]) - 1  # of the stage before last
        first = 0 if sw['pe_first_block'] else 1
        if last_block < first:
            raise ValueError(
                "last_ln_pe_source='last_stage_input': the stages before the "
                'last one have no block with a layer-wise PE.')
        return last_block - first + 1  # its PE is this step of the chain

    # ------------------------------------------------------------------ #
    # loading, freezing, lr decay
    # ------------------------------------------------------------------ #
    def _read_abs_pos_embed(self, state_dict, prefix, *args, **kwargs):
        """mmpretrain's ``absolute_pos_embed`` is this model's pos_0."""
        src, dst = prefix + 'absolute_pos_embed', prefix + 'pe.pos_embed'
        if src in state_dict and dst not in state_dict:
            state_dict[dst] = state_dict.pop(src)
            print_log(f'{src}: loaded as {dst} (pos_0).', logger='current')

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              *args, **kwargs):
        """mmpretrain's key updates of old Swin checkpoints (version < 3),
        which its own method applies to ``SwinTransformer`` itself only."""
        version = local_metadata.get('version', None)
        if version is None or version < 3:
            last = f'norm{self.num_stages - 1}.'
            for k in list(state_dict):
                if not k.startswith(prefix):
                    continue
                rest = k[len(prefix):]
                if (version is None or version < 2) and rest.startswith(
                        'norm.'):
                    state_dict[prefix + last + rest[len('norm.'):]] = \
                        state_dict.pop(k)
                elif 'attn_mask' in rest:
                    del state_dict[k]
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args, **kwargs)

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        frozen = [self.patch_embed]
        for s in range(self.frozen_stages + 1):
            frozen.append(self.stages[s])
            for block in self._blocks_of_stage(s):
                if self.pe.norm_of(block) is not None:
                    frozen.append(self.pe.norm_of(block))
            if s in self.out_indices:
                frozen.append(getattr(self, f'norm{s}'))
                if s == self.num_stages - 1 and self.pe.has_last_term:
                    frozen.append(self.pe.last_norm)
        return frozen

    def _freeze_stages(self):
        if not hasattr(self, 'pe') or self.frozen_stages < 0:
            return  # (called by mmpretrain's train() during __init__ too)
        self._freeze(self._frozen_modules())

    def train(self, mode: bool = True):
        """Set train/eval mode; frozen stages stay in eval mode."""
        super().train(mode)
        return self

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer depth of a parameter, for layer-wise lr decay.

        As mmpretrain's Swin (stem 0, block ``i`` over all stages ``i + 1``,
        a PatchMerging with the last block of its stage), plus the PE: pos_0
        depth 0, block ``i``'s PE LayerNorm ``i + 1``, LN'_last and the
        output norms the last depth.

        Returns:
            tuple[int, int]: The depth and the number of depths (L + 2).
        """
        num_depths = self.num_layers + 2
        if param_name.startswith(prefix + 'pe.'):
            part = self.pe.block_of(param_name[len(prefix + 'pe.'):])
            if part == 'input':
                return 0, num_depths
            if isinstance(part, int):
                return part + 1, num_depths
            return num_depths - 1, num_depths
        return super().get_layer_depth(param_name, prefix)

    # ------------------------------------------------------------------ #
    # forward: stem, blocks and tail (the PEBackbone contract)
    # ------------------------------------------------------------------ #
    def _blocks_of_stage(self, s: int) -> range:
        start = sum(self.depths[:s])
        return range(start, start + self.depths[s])

    def pe_transitions(self) -> List[nn.Module]:
        """The PatchMerging of each stage boundary, for ``self.pe(hw,
        transitions)``: the PE crosses it through the tokens' own module."""
        return [stage.downsample for stage in self.stages[:-1]]

    def forward_stem(self, img: torch.Tensor) -> Tuple[torch.Tensor, SwinGrid]:
        """Patch tokens (+ pos_0 as the mode says) and every PE of the
        batch's grids (computed once per batch).

        Args:
            img (Tensor): Images (B, C, H, W); any H, W (padded as mmcv's
                PatchEmbed pads, pos_0 interpolated).

        Returns:
            tuple[Tensor, SwinGrid]: Tokens (B, h * w, C_0) and the grid.
        """
        x, hw = self.patch_embed(img)
        hw = tuple(hw)
        stage_hw = [hw]
        for merge in self.pe_transitions():
            stage_hw.append(merged_grid(merge, stage_hw[-1]))
        pe = self.pe(hw, self.pe_transitions())
        if pe.input is not None:
            x = x + pe.input
        return self.drop_after_pos(x), SwinGrid(hw, pe, 0, tuple(stage_hw))

    def _block(self, index: int, x: torch.Tensor,
               grid: SwinGrid) -> torch.Tensor:
        """x' = x + SW-MSA(LN_1(x) + pe); x'' = x' + FFN(LN_2(x')), with
        mmpretrain's block modules; the PE is added before windowing."""
        stage = self.pe.stage_of_block[index]
        first = sum(self.depths[:stage])
        block = self.stages[stage].blocks[index - first]
        hw = grid.stage_hw[stage]
        pe = grid.pe.layers[index]

        def inner(x):
            attn_in = block.norm1(x)
            if pe is not None:
                attn_in = attn_in + pe
            x = x + block.attn(attn_in, hw)  # drop path inside ShiftWindowMSA
            return block.ffn(block.norm2(x), identity=x)

        if block.with_cp and x.requires_grad:
            return cp.checkpoint(inner, x, use_reentrant=False)
        return inner(x)

    def _merge(self, x: torch.Tensor, grid: SwinGrid, stage: int):
        """Tokens of stage ``stage`` through its PatchMerging."""
        return self.stages[stage].downsample(x, grid.stage_hw[stage])[0]

    def forward_blocks(self,
                       x: torch.Tensor,
                       grid: SwinGrid,
                       start: int = 0,
                       stop: Optional[int] = None) -> torch.Tensor:
        """Run blocks ``start .. stop - 1`` (indices over all stages), each
        with its layer-wise PE; ``x`` is what block ``start - 1`` output.
        Entering a stage, the tokens first go through the previous stage's
        PatchMerging."""
        stop = self.num_layers if stop is None else stop
        for i in range(start, stop):
            stage = self.pe.stage_of_block[i]
            if i and stage != self.pe.stage_of_block[i - 1]:
                x = self._merge(x, grid, stage - 1)
            x = self._block(i, x, grid)
        return x

    def token_grid(self, img_size) -> Tuple[int, int]:
        """The first stage's token grid of an input size S or (H, W): the
        patch embedding pads to whole patches (adaptive 'corner' padding)."""
        return token_grid(img_size, self.patch_embed.projection.stride)

    def pooled_last_term(self, img_size=None) -> torch.Tensor:
        """GAP of LN'_last(pos_k) on the last grid at an input size
        (default ``img_size``): the constant MPVG's Last-LN term adds to what
        a GAP neck pools from the last stage."""
        if not self.pe.has_last_term:
            raise ValueError(f'This MPVGSwin (pe_mode={self.pe_mode!r}) has '
                             'no Last-LN PE term.')
        hw = (self.patch_resolution if img_size is None else
              self.token_grid(img_size))
        return self.pe(hw, self.pe_transitions()).last.mean(dim=1)[0]

    def attention_norms(self) -> List[nn.Module]:
        """LN_1 of every block (the PE is added to its output)."""
        return [block.norm1 for stage in self.stages for block in stage.blocks]

    @property
    def last_ln(self) -> nn.Module:
        if not self.final_norm:
            raise AttributeError(
                'This MPVGSwin has no Last LN: the last stage is not in '
                'out_indices (or norm_cfg is None).')
        return getattr(self, f'norm{self.num_stages - 1}')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args:
            x (Tensor): Images (B, C, H, W).

        Returns:
            tuple[Tensor]: One map (B, C_i, h_i, w_i) per ``out_indices``
            entry, through ``norm{i}``; the last stage's map includes MPVG's
            Last-LN PE term, so a GAP neck pools LN_last(x_L) + LN'_last(pos).
        """
        x, grid = self.forward_stem(x)
        outs = []
        for s in range(self.num_stages):
            blocks = self._blocks_of_stage(s)
            x = self.forward_blocks(x, grid, blocks.start, blocks.stop)
            if s not in self.out_indices:
                continue
            hw = grid.stage_hw[s]
            if s == self.num_stages - 1:
                out = self.forward_tail(x, grid)
            elif self.out_after_downsample:
                # (the next stage merges x again: a cheap Linear, kept so
                # that forward_blocks alone is the whole block path)
                out = getattr(self, f'norm{s}')(self._merge(x, grid, s))
                hw = grid.stage_hw[s + 1]
            else:
                out = getattr(self, f'norm{s}')(x)
            outs.append(
                out.view(-1, *hw, out.shape[-1]).permute(0, 3, 1,
                                                         2).contiguous())
        return tuple(outs)
