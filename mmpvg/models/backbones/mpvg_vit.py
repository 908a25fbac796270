# Copyright (c) mmpvg contributors. All rights reserved.
"""MPVGViT: one ViT backbone for MPVG and its position-embedding baselines.

The five structures of the paper differ only in where the position
embedding (PE) goes; :class:`LayerwisePositionEmbedding` computes those PEs
and three methods show the few places they enter: :meth:`MPVGViT.forward_stem`
(x + pos_0), :meth:`MPVGViT.forward_blocks` (each block's PE) and
:meth:`MPVGViT.forward_tail` (the Last-LN term). Everything that runs the ViT
(``forward``, the ViT-Adapter, the PE analysis) goes through them.

- ``cls``  (ViT/DeiT): x_0 = [cls; p] + pos_0, head on the class token.
- ``gap``:  x_0 = p + pos_0, head on GAP(LN_last(x_L)).
- ``lape``: x_0 = [cls; p], block l attends over LN_l(x_l) + pos_{l+1}.
- ``pvg``:  x_0 = p + pos_0, block 0 plain, block l >= 1 uses pos_l, GAP.
- ``mpvg``: PVG + LN'_last(pos_0) added to LN_last(x_L) before GAP.

The same class builds T2T-ViT-7 (``arch='t2t-vit-7'``): its Performer
tokens-to-token stem takes the place of the patch embedding (still
``patch_embed``), and pos_0 is T2T-ViT's fixed 1-D sinusoidal table.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.utils import to_2tuple

from mmpvg.registry import register_model
from mmpvg.utils.checks import check_backbone_args
from ..layers import (PatchEmbed,
                      PositionEmbeddings, T2TModule, TransformerBlock,
                      resolve_pe_switches)
from .base import PlainViTBase


class TokenGrid(NamedTuple):
    """What every part of one forward pass shares (see
    :meth:`MPVGViT.forward_stem`).

    Attributes:
        hw (tuple[int, int]): The token grid (h, w) of the batch.
        pe (PositionEmbeddings): Every PE of that grid.
        num_extra_tokens (int): Class-token rows before the h * w patch
            tokens (0 or 1).
    """
    hw: Tuple[int, int]
    pe: PositionEmbeddings
    num_extra_tokens: int

    @property
    def stage_hw(self) -> Tuple[Tuple[int, int]]:
        """The token grid of each stage (one stage)."""
        return (self.hw, )


@register_model()
class MPVGViT(PlainViTBase):
    """Vision Transformer with the position-embedding structures of MPVG.

    A PyTorch implementation of `Maximizing the Position Embedding for Vision
    Transformers with Global Average Pooling <https://arxiv.org/abs/2502.02919>`_
    (AAAI 2025), with ViT/DeiT, GAP, LaPE and PVG as ``pe_mode`` values.

    Args:
        arch (str | dict): 'deit-tiny', 'deit-small', 'deit-base' (also
            'deit-t', 'deit-s', 'deit-b'), mmpretrain's 'b'/'base',
            'l'/'large', 'h'/'huge' (its 's'/'small' is refused as
            ambiguous),
            'vit-lite-7' (CIFAR: patch 4, 32x32, post-attention norm) or
            't2t-vit-7' (T2T-ViT-7: Performer tokens-to-token stem, fixed
            1-D sinusoidal pos_0, LN eps 1e-5, no qkv bias), or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads`` and
            ``feedforward_channels`` (optional: ``qkv_bias``,
            ``pos_embed_init_std``, ``norm_after_attn``, ``img_size``,
            ``patch_size``; ``stem``: 'patch' (conv patch embedding) or
            't2t' (:class:`T2TModule`, configured by ``t2t_cfg``, a dict of
            its arguments: ``token_dims``, ``kernel_sizes``, ``strides``,
            ``paddings``, ``kernel_ratio``, ``drop_rate``; a T2T stem takes
            no ``patch_size``); ``pos_embed_type``: 'learnable' or
            'sinusoidal'; ``norm_eps``: eps of every LayerNorm when
            ``norm_cfg`` is not given). Defaults to 'deit-tiny'.
        pe_mode (str): 'cls', 'gap', 'lape', 'pvg' or 'mpvg'.
            Defaults to 'mpvg'.
        with_cls_token (bool, optional): ``None`` follows ``pe_mode`` (True
            for 'cls' and 'lape'). ``False`` with 'cls' or 'lape' drops the
            class token for dense outputs (``out_type`` 'featmap' or 'raw'),
            as ViT-Adapter and mmseg do; GAP modes never take one.
        pe_at_input (bool, optional): Add pos_0 to the tokens before block 0
            (False for 'lape'). Ablation "no x+PE at the input".
        layerwise_pe (bool, optional): Deliver PEs to the blocks' attention
            inputs through per-block PE LayerNorms ('lape', 'pvg', 'mpvg').
            ``False`` with ``last_ln_pe=0`` is the paper's Fig. 5b.
        pe_first_block (bool, optional): With ``layerwise_pe``, block 0 gets a
            PE too (True for 'lape'). Ablation "PE to block 0".
        hierarchical_pe (bool, optional): With ``layerwise_pe``, chain the PE
            LayerNorms (pos_l = LN'_l(pos_{l-1})); False gives every block
            LN'_l(pos_0). Ablation "non-hierarchical".
        last_ln_pe (int | bool, optional): k such that LN'_last(pos_k) is
            added to every token after the Last LN; ``False`` disables it,
            ``True`` means 0. MPVG uses 0. Requires GAP (no class token).
        img_size (int | tuple, optional): Input size the PE is stored for;
            other sizes are interpolated (a sinusoidal PE is rebuilt for
            their grid). Defaults to the arch's (224 / 32).
        patch_size (int | tuple, optional): Defaults to the arch's (16 / 4).
            Not accepted with a T2T stem, whose token grid follows its soft
            splits (``patch_size`` is then the stem's total stride).
        in_channels (int): Image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Blocks to output, as
            mmpretrain's VisionTransformer: negative entries count from the
            end, outputs come in block order, the last block's after the
            Last LN. Defaults to -1.
        out_type (str, optional): 'cls_token', 'avg_featmap' (mean over the
            patch tokens of LN_last(x_L) [+ Last-LN PE]), 'featmap'
            (B, C, h, w) or 'raw' (B, N, C). ``None``: 'cls_token' with a
            class token, else 'avg_featmap'. The name is mmpretrain's, the
            meaning differs: mmpretrain's 'avg_featmap' adds a second
            LayerNorm after pooling, ``ln2(mean(ln1(x)))``, ours is
            ``mean(norm(x))`` (LN, then pool; the Last-LN PE must be added
            per token before pooling). mmpretrain2mpvg.py moves ``ln2`` into
            an identity ``LinearNeck``.
        qkv_bias (bool, optional): Bias in qkv. Defaults to the arch's.
        drop_rate (float): Dropout after PE and in blocks. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linear over blocks.
        window_size (int): With ``window_size > 0``, every block not in
            ``global_attn_indexes`` attends within non-overlapping
            ``window_size`` x ``window_size`` windows of the token grid
            (ViTDet / ViT-Adapter; the grid is zero-padded to a multiple of
            the window, see :class:`TransformerBlock`). The PE is added to
            ``LN_l(x)`` before windowing. Needs no class token.
            Defaults to 0 (global attention everywhere).
        global_attn_indexes (Sequence[int]): Blocks that keep global
            attention when ``window_size > 0`` (ignored when it is 0).
            Defaults to ().
        norm_cfg (dict, optional): Config of every LayerNorm (the T2T
            stem's included). Defaults to ``dict(type='LN', eps=norm_eps)``
            with the arch's ``norm_eps``: 1e-6, 1e-5 for 't2t-vit-7'.
        sinusoid_skip_cls_row (bool, optional): Reading, for a sinusoidal
            pos_0 without class token (GAP modes): True takes rows 1..N of
            the (N + 1)-row table T2T-ViT builds for a class-token model,
            so class-token and GAP models give their patch tokens the same
            PE; False takes rows 0..N-1. Only for a sinusoidal pos_0;
            ``None``: True there.
        final_norm (bool): Apply the Last LN after the last block.
            Defaults to True.
        frozen_stages (int): As mmpretrain's VisionTransformer: ``k > 0``
            freezes the stem (patch embedding, class token, pos_0) and the
            first k blocks with their PE LayerNorms; ``k`` = the number of
            blocks also the Last LN (and the Last-LN PE norm); 0 and -1
            freeze nothing. Frozen parts stay in eval mode. Defaults to -1.
        interpolate_mode (str): PE interpolation mode. Defaults to 'bicubic'.
        init_cfg (dict, optional): Initialization config, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """
    arch_zoo = {
        **dict.fromkeys(['deit-t', 'deit-tiny'], dict(
            embed_dims=192, num_layers=12, num_heads=3,
            feedforward_channels=768)),
        **dict.fromkeys(['deit-s', 'deit-small'], dict(
            embed_dims=384, num_layers=12, num_heads=6,
            feedforward_channels=1536)),
        # DeiT-B is mmpretrain's ViT-B ('b' / 'base'); mmpretrain's presets
        # are accepted for configs switched from it ('s' / 'small' are left
        # out: mmpretrain's is not DeiT-S, see _parse_arch)
        **dict.fromkeys(['deit-b', 'deit-base', 'b', 'base'], dict(
            embed_dims=768, num_layers=12, num_heads=12,
            feedforward_channels=3072)),
        **dict.fromkeys(['l', 'large'], dict(
            embed_dims=1024, num_layers=24, num_heads=16,
            feedforward_channels=4096)),
        **dict.fromkeys(['h', 'huge'], dict(
            embed_dims=1280, num_layers=32, num_heads=16,
            feedforward_channels=5120)),
        # Compact Transformers' ViT-Lite-7/4 for 32x32 CIFAR images.
        'vit-lite-7': dict(
            embed_dims=256, num_layers=7, num_heads=4,
            feedforward_channels=512, qkv_bias=False, pos_embed_init_std=0.2,
            norm_after_attn=True, img_size=32, patch_size=4),
        # T2T-ViT-7 (Yuan et al., ICCV 2021) as the MPVG paper trains it.
        't2t-vit-7': dict(
            embed_dims=256, num_layers=7, num_heads=4,
            feedforward_channels=512, qkv_bias=False, stem='t2t',
            pos_embed_type='sinusoidal', norm_eps=1e-5),
    }
    ARCH_KEYS = {'embed_dims', 'num_layers', 'num_heads',
                 'feedforward_channels'}
    ARCH_DEFAULTS = dict(qkv_bias=True, pos_embed_init_std=0.02,
                         norm_after_attn=False, img_size=224, patch_size=16,
                         stem='patch', t2t_cfg=None,
                         pos_embed_type='learnable', norm_eps=1e-6)
    STEMS = ('patch', 't2t')
    OUT_TYPES = ('cls_token', 'avg_featmap', 'featmap', 'raw')

    def __init__(self,
                 arch: Union[str, dict] = 'deit-tiny',
                 pe_mode: str = 'mpvg',
                 with_cls_token: Optional[bool] = None,
                 pe_at_input: Optional[bool] = None,
                 layerwise_pe: Optional[bool] = None,
                 pe_first_block: Optional[bool] = None,
                 hierarchical_pe: Optional[bool] = None,
                 last_ln_pe: Optional[Union[int, bool]] = None,
                 img_size=None,
                 patch_size=None,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 out_type: Optional[str] = None,
                 qkv_bias: Optional[bool] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 window_size: int = 0,
                 global_attn_indexes: Sequence[int] = (),
                 norm_cfg: Optional[dict] = None,
                 final_norm: bool = True,
                 frozen_stages: int = -1,
                 interpolate_mode: str = 'bicubic',
                 sinusoid_skip_cls_row: Optional[bool] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.arch_settings = self._parse_arch(arch)
        s = self.arch_settings
        self.embed_dims = s['embed_dims']
        self.num_layers = s['num_layers']
        if norm_cfg is None:
            norm_cfg = dict(type='LN', eps=s['norm_eps'])
        check_backbone_args(
            img_size=s['img_size'] if img_size is None else img_size,
            patch_size=patch_size, in_channels=in_channels,
            drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate, interpolate_mode=interpolate_mode)
        self.img_size = to_2tuple(
            s['img_size'] if img_size is None else img_size)
        stem = self._build_stem(in_channels, patch_size, norm_cfg)
        self.patch_resolution = stem.token_grid(self.img_size)

        self.pe_mode = pe_mode
        switches = resolve_pe_switches(
            pe_mode, self.num_layers,
            dense_output=out_type in ('featmap', 'raw'),
            with_cls_token=with_cls_token, pe_at_input=pe_at_input,
            layerwise_pe=layerwise_pe, pe_first_block=pe_first_block,
            hierarchical_pe=hierarchical_pe, last_ln_pe=last_ln_pe)
        self.with_cls_token = switches['with_cls_token']
        self.num_extra_tokens = int(self.with_cls_token)
        if switches['last_ln_pe'] is not None and not final_norm:
            raise ValueError('last_ln_pe adds LN\'_last(pos_k) after the Last '
                             'LN, so it needs final_norm=True.')

        self.out_type = out_type or (
            'cls_token' if self.with_cls_token else 'avg_featmap')
        if self.out_type not in self.OUT_TYPES:
            raise ValueError(f'out_type={out_type!r} is not supported; '
                             f'choose from {self.OUT_TYPES}.')
        if self.out_type == 'cls_token' and not self.with_cls_token:
            raise ValueError(
                f"out_type='cls_token' needs a class token, but "
                f"pe_mode={pe_mode!r} has none; use 'avg_featmap', "
                "'featmap' or 'raw'.")

        self.out_indices = self._parse_indices(out_indices, 'out_indices')
        self.window_size = window_size
        self.global_attn_indexes = self._parse_window_attention(
            window_size, global_attn_indexes)
        self._set_frozen_stages(frozen_stages)
        self.final_norm = final_norm

        self.patch_embed = stem
        self._build_pe_path(
            switches, norm_cfg, drop_rate,
            pos_embed_type=s['pos_embed_type'],
            sinusoid_offset=self._sinusoid_offset(
                s['pos_embed_type'], sinusoid_skip_cls_row),
            init_std=s['pos_embed_init_std'],
            interpolate_mode=interpolate_mode)

        qkv_bias = s['qkv_bias'] if qkv_bias is None else qkv_bias
        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList([
            TransformerBlock(
                self.embed_dims, s['num_heads'], s['feedforward_channels'],
                qkv_bias=qkv_bias, drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate, drop_path_rate=dpr[i],
                norm_cfg=norm_cfg, norm_after_attn=s['norm_after_attn'],
                window_size=(0 if i in self.global_attn_indexes
                             else window_size))
            for i in range(self.num_layers)
        ])
        self.norm = (
            build_norm_layer(norm_cfg, self.embed_dims)[1]
            if final_norm else nn.Identity())

        self._init_parameters()
        self._freeze_stages()
        self._register_cls_token_hook()

    # ------------------------------------------------------------------ #
    # argument parsing
    # ------------------------------------------------------------------ #
    def _parse_arch(self, arch) -> dict:
        if isinstance(arch, str) and arch.lower() in ('s', 'small'):
            raise ValueError(
                f'arch={arch!r} is ambiguous: mmpretrain\'s ViT "small" has '
                '768 dims, 8 layers, 8 heads and an MLP of 2304, while DeiT-S '
                "(timm's ViT-S) has 384 dims, 12 layers, 6 heads. Pass "
                "arch='deit-small' for DeiT-S, or arch=dict(embed_dims=768, "
                'num_layers=8, num_heads=8, feedforward_channels=2304) for '
                "mmpretrain's.")
        arch = self._arch_dict(arch)
        stem = arch.get('stem', 'patch')
        if stem not in self.STEMS:
            raise ValueError(f'arch stem={stem!r} is not supported; choose '
                             f'from {self.STEMS}.')
        if stem == 't2t' and 'patch_size' in arch:
            raise ValueError('arch patch_size does not apply to the T2T stem: '
                             'its token grid follows its soft splits '
                             '(t2t_cfg kernel_sizes / strides / paddings).')
        if stem == 'patch' and arch.get('t2t_cfg') is not None:
            raise ValueError("arch t2t_cfg needs stem='t2t'.")
        if (arch.get('pos_embed_type') == 'sinusoidal'
                and 'pos_embed_init_std' in arch):
            raise ValueError('arch pos_embed_init_std applies to a learnable '
                             'pos_0, not to the fixed sinusoidal table.')
        return {**self.ARCH_DEFAULTS, **arch}

    def _build_stem(self, in_channels, patch_size, norm_cfg) -> nn.Module:
        """The conv patch embedding or the T2T module; sets
        ``patch_size`` (for a T2T stem: its total stride)."""
        s = self.arch_settings
        if s['stem'] == 'patch':
            check_backbone_args(patch_size=s['patch_size'])
            self.patch_size = to_2tuple(
                s['patch_size'] if patch_size is None else patch_size)
            return PatchEmbed(in_channels, self.embed_dims, self.patch_size)
        if patch_size is not None:
            raise ValueError(
                f'patch_size={patch_size!r} does not apply to the T2T stem: '
                'its token grid follows its soft splits (arch t2t_cfg '
                'kernel_sizes / strides / paddings).')
        stem = T2TModule(in_channels, self.embed_dims, norm_cfg=norm_cfg,
                         **(s['t2t_cfg'] or {}))
        self.patch_size = (stem.stride, stem.stride)
        return stem

    def _sinusoid_offset(self, pos_embed_type, skip_cls_row) -> int:
        """Rows of the sinusoidal table pos_0 skips (see
        ``sinusoid_skip_cls_row``)."""
        if pos_embed_type != 'sinusoidal':
            if skip_cls_row is not None:
                raise ValueError(
                    'sinusoid_skip_cls_row only applies to a sinusoidal '
                    f"pos_0; this arch's is {pos_embed_type!r}.")
            return 0
        if self.with_cls_token:
            if skip_cls_row is not None:
                raise ValueError(
                    'sinusoid_skip_cls_row only applies to a model without '
                    f'class token; pe_mode={self.pe_mode!r} has one (its '
                    'table starts with the class-token row).')
            return 0
        return 0 if skip_cls_row is False else 1

    def _parse_window_attention(self, window_size, global_attn_indexes):
        if not isinstance(window_size, int) or window_size < 0:
            raise ValueError(
                f'window_size must be an int >= 0 (0: global attention), '
                f'got {window_size!r}.')
        if window_size == 0:
            return []  # global attention everywhere; the indexes are unused
        parsed = self._parse_indices(global_attn_indexes,
                                     'global_attn_indexes')
        if self.with_cls_token:
            raise ValueError(
                f'window_size={window_size} needs a model without class '
                'token (windows tile the token grid); pe_mode='
                f'{self.pe_mode!r} has one. For dense outputs pass '
                "with_cls_token=False (out_type 'featmap' or 'raw').")
        return sorted(set(parsed))

    # ------------------------------------------------------------------ #
    # init / freezing
    # ------------------------------------------------------------------ #
    # ------------------------------------------------------------------ #
    # forward: the stem, the blocks and the tail exist once; forward, the
    # ViT-Adapter and the PE analysis all go through them.
    # ------------------------------------------------------------------ #
    def forward_stem(self, img: torch.Tensor
                     ) -> Tuple[torch.Tensor, TokenGrid]:
        """Patch tokens (with the class token), pos_0 at the input, and every
        PE of the batch's token grid (computed once per batch).

        Args:
            img (Tensor): Images (B, C, H, W); any H, W (padded to a
                multiple of the patch size, PE interpolated).

        Returns:
            tuple[Tensor, TokenGrid]: Tokens x_0 (B, extra + h * w, C) and
            what the blocks and the tail need.
        """
        x, hw = self.patch_embed(img)
        x, pe = self._embed(x, hw)
        return x, TokenGrid(hw, pe, self.num_extra_tokens)

    def forward_blocks(self,
                       x: torch.Tensor,
                       grid: TokenGrid,
                       start: int = 0,
                       stop: Optional[int] = None) -> torch.Tensor:
        """Run blocks ``start .. stop - 1``, each with its layer-wise PE."""
        for i in range(start, self.num_layers if stop is None else stop):
            x = self.blocks[i](x, grid.pe.layers[i], grid.hw)
        return x

    def pooled_last_term(self, img_size=None) -> torch.Tensor:
        """GAP of LN'_last(pos_k) at an input size (default ``img_size``):
        the constant MPVG's Last-LN term adds to the pooled output."""
        if not self.pe.has_last_term:
            raise ValueError(
                f'This {type(self).__name__} (pe_mode={self.pe_mode!r}) has '
                'no Last-LN PE term.')
        if self.out_type != 'avg_featmap' or self.out_indices != [
                self.num_layers - 1]:
            raise ValueError(
                'The Last-LN PE term is a constant only after GAP of the '
                "last block: it needs out_type='avg_featmap' and "
                f'out_indices=-1, got out_type={self.out_type!r}, '
                f'out_indices={self.out_indices}.')
        hw = (self.patch_resolution if img_size is None else
              self.token_grid(img_size))
        return self.pe(hw).last.mean(dim=1)[0]

    def forward_features(self, img: torch.Tensor,
                         indices: Optional[Sequence[int]] = None
                         ) -> Tuple[List[torch.Tensor], TokenGrid]:
        """Token sequences after the blocks in ``indices``.

        The last block's tokens are given after :meth:`forward_tail`, the
        others as the blocks leave them.

        Args:
            img (Tensor): Images (B, C, H, W).
            indices (Sequence[int], optional): Block indices (negative count
                from the end). Defaults to ``out_indices``.

        Returns:
            tuple[list[Tensor], TokenGrid]: Tokens (B, extra + h * w, C) per
            index, in increasing block order, and the grid.
        """
        indices = (self.out_indices if indices is None else
                   self._parse_indices(indices, 'indices'))
        x, grid = self.forward_stem(img)
        outs, done = [], 0
        for i in sorted(set(indices)):
            x = self.forward_blocks(x, grid, done, i + 1)
            done = i + 1
            outs.append(self.forward_tail(x, grid)
                        if i == self.num_layers - 1 else x)
        return outs, grid

    def forward(self, x: torch.Tensor):
        """Args:
            x (Tensor): Images of shape (B, C, H, W); any H, W (padded to
                a multiple of the patch size, PE interpolated).

        Returns:
            tuple[Tensor]: One output per entry of ``out_indices``.
        """
        feats, grid = self.forward_features(x)
        return tuple(self._format_output(f, grid) for f in feats)

    def _format_output(self, x: torch.Tensor, grid: TokenGrid):
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patch_tokens = x[:, grid.num_extra_tokens:]
        if self.out_type == 'avg_featmap':
            return patch_tokens.mean(dim=1)
        return patch_tokens.reshape(x.shape[0], *grid.hw,
                                    -1).permute(0, 3, 1, 2)
