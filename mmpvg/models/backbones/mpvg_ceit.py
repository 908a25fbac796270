# Copyright (c) mmpvg contributors. All rights reserved.
"""MPVGCeiT: CeiT-Ti with the position-embedding structures of MPVG.

CeiT ("Incorporating Convolution Designs into Visual Transformers", Yuan et
al., ICCV 2021; no official code) is a DeiT with three changes: an
image-to-tokens (I2T) convolutional stem, LeFF instead of the MLP, and a
layer-wise class-token attention (LCA) that pools the per-layer tokens. The
MPVG paper compares Default / LaPE / PVG / MPVG on CeiT-Ti without saying
how PVG and MPVG, which have no class token, feed the LCA; every such point
is a named argument here (see /work/shared/design/backbones.md, "CeiT-Ti").

- ``cls``:  x_0 = [cls; p] + pos_0; LCA over the 12 class tokens.
- ``gap``:  x_0 = p + pos_0; LCA over the 12 GAP tokens (``lca_tokens``).
- ``lape``: x_0 = [cls; p]; block l attends over LN_l(x_l) + pos_{l+1}
  (197-row PE, chain in all blocks); LCA over the class tokens.
- ``pvg``:  x_0 = p + pos_0; chain in blocks 1..11; LeFF on all tokens;
  LCA over the GAP tokens; y = LN_last(LCA).
- ``mpvg``: PVG + the mean over tokens of LN'_last(pos_0) added after the
  Last LN (``last_ln_pe_pooling``).
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.utils import to_2tuple

from mmpvg.registry import register_model
from mmpvg.utils.checks import check_backbone_args
from mmpvg.utils.grid import token_grid
from ..layers import (PatchEmbed,
                      PositionEmbeddings, TransformerBlock,
                      resolve_pe_switches)
from ..layers.layer_class_attention import LayerClassAttention
from ..layers.leff import LeFF
from .base import PlainViTBase


class CeiTGrid(NamedTuple):
    """What every part of one forward pass of :class:`MPVGCeiT` shares.

    Attributes:
        hw (tuple[int, int]): The token grid (h, w) of the batch.
        pe (PositionEmbeddings): Every PE of that grid.
        num_extra_tokens (int): Class-token rows before the patch tokens.
        layer_tokens (dict[int, Tensor]): Filled by
            :meth:`MPVGCeiT.forward_blocks`: block index -> the (B, C) token
            the LCA takes from that block's output (its class token, or the
            mean of its patch tokens).
    """
    hw: Tuple[int, int]
    pe: PositionEmbeddings
    num_extra_tokens: int
    layer_tokens: Dict[int, torch.Tensor]

    @property
    def stage_hw(self) -> Tuple[Tuple[int, int]]:
        """The token grid of each stage (one stage)."""
        return (self.hw, )


class I2T(nn.Module):
    """CeiT's image-to-tokens stem: conv 7x7 s2 (no bias) + BN + max-pool
    3x3 s2, then a patch_size x patch_size patch embedding.

    Any input size works: the convolution and the pooling pad by k // 2, and
    the patch embedding pads bottom/right to a multiple of its patch.

    Args:
        in_channels (int): Image channels.
        stem_channels (int): Channels of the convolution (CeiT: 64).
        embed_dims (int): Token width.
        patch_size (int): Patch of the embedding on the pooled map (CeiT: 4).
        norm_cfg (dict): Norm after the convolution. Defaults to BN.
    """

    def __init__(self, in_channels: int, stem_channels: int, embed_dims: int,
                 patch_size: int, norm_cfg: dict = dict(type='BN')):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, stem_channels, 7, stride=2,
                              padding=3, bias=False)
        self.norm = build_norm_layer(norm_cfg, stem_channels)[1]
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.patch_embed = PatchEmbed(stem_channels, embed_dims, patch_size)

    def token_grid(self, img_size) -> Tuple[int, int]:
        """The token grid (h, w) of an image size S or (H, W): the conv and
        the pool each give ceil(size / 2), the patch embedding
        ceil(. / patch)."""
        patch = self.patch_embed.patch_size
        return token_grid(img_size, [4 * p for p in patch])

    def forward(self, img: torch.Tensor):
        """Returns (tokens (B, h * w, C), (h, w))."""
        return self.patch_embed(self.pool(self.norm(self.conv(img))))


@register_model()
class MPVGCeiT(PlainViTBase):
    """CeiT with the position-embedding structures of MPVG.

    Args:
        arch (str | dict): 'tiny' (CeiT-Ti: width 192, 12 blocks, 3 heads,
            LeFF x4, stem 64 channels, patch 4 on the pooled map), or a
            dict with ``embed_dims``, ``num_layers``, ``num_heads``,
            ``feedforward_channels`` (optional: ``stem_channels``,
            ``patch_size``, ``lca_feedforward_channels``, default 4 x
            ``embed_dims``). Defaults to 'tiny'.
        pe_mode (str): 'cls', 'gap', 'lape', 'pvg' or 'mpvg'.
            Defaults to 'mpvg'.
        with_cls_token, pe_at_input, layerwise_pe, pe_first_block,
        hierarchical_pe, last_ln_pe: The PE switches of
            :class:`~mmpvg.models.MPVGViT` (``None``: as ``pe_mode`` says);
            the same combinations are errors.
        lca_tokens (str, optional): What the LCA takes from each block:
            ``'cls'`` (its class token, CeiT) or ``'gap'`` (the mean of its
            patch tokens: how the class-token-free modes keep the LCA, a
            reading). ``None``: 'cls' with a class token, else 'gap'. A
            class token needs 'cls' and 'gap' needs none.
        last_ln_pe_pooling (str): How MPVG's per-token LN'_last(pos_k) meets
            the single LCA token after the Last LN: ``'after_ln'`` (default)
            adds the mean over tokens of LN'_last(pos_k); ``'before_ln'``
            adds LN'_last(mean over tokens of pos_k). A reading; unused
            without a Last-LN PE.
        leff_extra_tokens (str): What LeFF gives the class token, which is
            not on the grid: 'bypass' (default; the class token skips the
            feed-forward) or 'concat' (its input row, CeiT's Concat read
            literally). See :class:`~mmpvg.models.layers.leff.LeFF`.
        leff_kernel_size (int): Depthwise kernel of LeFF. Defaults to 3.
        leff_conv_bias (bool): Bias in LeFF's convolutions (a reading:
            CeiT writes them as linear projections, and with the biases
            CeiT-Ti counts 6.36M parameters with a 1000-class head, the
            6.4M CeiT reports; without them 6.34M). Defaults to True.
        lca_layer_embed (bool): The LCA adds a zero-initialised learnable
            layer embedding to the per-layer tokens. Defaults to True.
        img_size (int | tuple): Input size the PE is stored for; other sizes
            are interpolated. Defaults to 224.
        in_channels (int): Image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Blocks whose token maps
            ``'featmap'`` outputs. Defaults to -1.
        out_type (str, optional): 'cls_token' / 'avg_featmap': the pooled
            output y = LN_last(LCA) [+ Last-LN PE], (B, C); the name says
            which tokens the LCA pools ('cls_token' with ``lca_tokens``
            'cls', 'avg_featmap' with 'gap'). 'featmap': (B, C, h, w) patch
            tokens after each block of ``out_indices``, as the blocks leave
            them (no LCA, no Last LN). ``None``: the pooled output.
        qkv_bias (bool): Bias in the qkv projections. Defaults to True.
        drop_rate (float): Dropout after PE and in blocks. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linear over the blocks
            (the LCA gets the last rate).
        norm_cfg (dict): Config of every LayerNorm.
            Defaults to ``dict(type='LN', eps=1e-6)``.
        conv_norm_cfg (dict): Config of the BatchNorms of the stem and LeFF.
            Defaults to ``dict(type='BN')``.
        final_norm (bool): Apply the Last LN after the LCA. Defaults to True.
        frozen_stages (int): As mmpretrain's VisionTransformer: ``k > 0``
            freezes the stem (patch embedding, class token, pos_0) and the
            first k blocks with their PE LayerNorms; ``k`` = the number of
            blocks also the Last LN (and the Last-LN PE norm); 0 and -1
            freeze nothing. Frozen parts stay in eval mode. Defaults to -1.
        interpolate_mode (str): PE interpolation mode. Defaults to 'bicubic'.
        init_cfg (dict, optional): Initialization config.
    """
    STEM = 'stem'
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny', 'ceit-tiny'], dict(
            embed_dims=192, num_layers=12, num_heads=3,
            feedforward_channels=768)),
    }
    ARCH_KEYS = {'embed_dims', 'num_layers', 'num_heads',
                 'feedforward_channels'}
    ARCH_DEFAULTS = dict(stem_channels=64, patch_size=4,
                         lca_feedforward_channels=None)
    OUT_TYPES = ('cls_token', 'avg_featmap', 'featmap')
    LCA_TOKENS = ('cls', 'gap')
    LAST_LN_PE_POOLINGS = ('after_ln', 'before_ln')

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 pe_mode: str = 'mpvg',
                 with_cls_token: Optional[bool] = None,
                 pe_at_input: Optional[bool] = None,
                 layerwise_pe: Optional[bool] = None,
                 pe_first_block: Optional[bool] = None,
                 hierarchical_pe: Optional[bool] = None,
                 last_ln_pe: Optional[Union[int, bool]] = None,
                 lca_tokens: Optional[str] = None,
                 last_ln_pe_pooling: str = 'after_ln',
                 leff_extra_tokens: str = 'bypass',
                 leff_kernel_size: int = 3,
                 leff_conv_bias: bool = True,
                 lca_layer_embed: bool = True,
                 img_size=224,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 out_type: Optional[str] = None,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 conv_norm_cfg: dict = dict(type='BN'),
                 final_norm: bool = True,
                 frozen_stages: int = -1,
                 interpolate_mode: str = 'bicubic',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        s = self._parse_arch(arch)
        self.arch_settings = s
        self.embed_dims = s['embed_dims']
        self.num_layers = s['num_layers']
        check_backbone_args(
            img_size=img_size, patch_size=s['patch_size'],
            in_channels=in_channels, drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate,
            interpolate_mode=interpolate_mode)
        self.img_size = to_2tuple(img_size)

        self.stem = I2T(in_channels, s['stem_channels'], self.embed_dims,
                        s['patch_size'], conv_norm_cfg)
        self.patch_resolution = self.stem.token_grid(self.img_size)

        if out_type is not None and out_type not in self.OUT_TYPES:
            raise ValueError(f'out_type={out_type!r} is not supported; '
                             f'choose from {self.OUT_TYPES}.')
        dense = out_type == 'featmap'
        self.pe_mode = pe_mode
        switches = resolve_pe_switches(
            pe_mode, self.num_layers, dense_output=dense,
            with_cls_token=with_cls_token, pe_at_input=pe_at_input,
            layerwise_pe=layerwise_pe, pe_first_block=pe_first_block,
            hierarchical_pe=hierarchical_pe, last_ln_pe=last_ln_pe)
        self.with_cls_token = switches['with_cls_token']
        self.num_extra_tokens = int(self.with_cls_token)
        if switches['last_ln_pe'] is not None and not final_norm:
            raise ValueError('last_ln_pe adds LN\'_last(pos_k) after the Last '
                             'LN, so it needs final_norm=True.')

        self.lca_tokens = self._parse_lca_tokens(lca_tokens, dense)
        if last_ln_pe_pooling not in self.LAST_LN_PE_POOLINGS:
            raise ValueError(
                f'last_ln_pe_pooling={last_ln_pe_pooling!r} is not '
                f'supported; choose from {self.LAST_LN_PE_POOLINGS}.')
        self.last_ln_pe_pooling = last_ln_pe_pooling
        pooled = 'cls_token' if self.lca_tokens == 'cls' else 'avg_featmap'
        self.out_type = out_type or pooled
        if self.out_type not in ('featmap', pooled):
            raise ValueError(
                f'out_type={out_type!r}: the pooled output of MPVGCeiT is '
                f'the LCA output, named by the tokens the LCA pools '
                f'(lca_tokens={self.lca_tokens!r}); use {pooled!r} or '
                "'featmap'.")
        self.out_indices = self._parse_indices(out_indices)
        self._set_frozen_stages(frozen_stages)
        self.final_norm = final_norm
        self._build_pe_path(switches, norm_cfg, drop_rate,
                            interpolate_mode=interpolate_mode)

        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList([
            TransformerBlock(
                self.embed_dims, s['num_heads'], None, qkv_bias=qkv_bias,
                drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                drop_path_rate=dpr[i], norm_cfg=norm_cfg,
                ffn=LeFF(self.embed_dims, s['feedforward_channels'],
                         kernel_size=leff_kernel_size,
                         conv_bias=leff_conv_bias,
                         extra_tokens=leff_extra_tokens,
                         norm_cfg=conv_norm_cfg, drop=drop_rate))
            for i in range(self.num_layers)
        ])
        self.lca = LayerClassAttention(
            self.embed_dims, s['num_heads'], self.num_layers,
            s['lca_feedforward_channels'] or 4 * self.embed_dims,
            qkv_bias=qkv_bias, layer_embed=lca_layer_embed,
            drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
            drop_path_rate=dpr[-1], norm_cfg=norm_cfg)
        self.norm = (
            build_norm_layer(norm_cfg, self.embed_dims)[1]
            if final_norm else nn.Identity())

        self._init_parameters()
        self._freeze_stages()
        self._register_cls_token_hook()

    # ------------------------------------------------------------------ #
    # argument parsing
    # ------------------------------------------------------------------ #
    def _parse_lca_tokens(self, lca_tokens, dense: bool) -> str:
        if lca_tokens is None:
            return 'cls' if self.with_cls_token else 'gap'
        if lca_tokens not in self.LCA_TOKENS:
            raise ValueError(f'lca_tokens={lca_tokens!r} is not supported; '
                             f'choose from {self.LCA_TOKENS}.')
        if lca_tokens == 'cls' and not self.with_cls_token:
            raise ValueError(
                f"lca_tokens='cls' needs a class token, but pe_mode="
                f"{self.pe_mode!r} has none here; use lca_tokens='gap'.")
        if lca_tokens == 'gap' and self.with_cls_token and not dense:
            raise ValueError(
                f"lca_tokens='gap' with pe_mode={self.pe_mode!r}, which has "
                'a class token, would leave the class token unused by the '
                "output; use lca_tokens='cls', or a GAP mode ('gap', 'pvg', "
                "'mpvg').")
        return lca_tokens

    # ------------------------------------------------------------------ #
    # init / freezing / layer depth
    # ------------------------------------------------------------------ #
    def _tail_modules(self) -> List[nn.Module]:
        return [self.lca, self.norm]

    # ------------------------------------------------------------------ #
    # forward (the PEBackbone contract)
    # ------------------------------------------------------------------ #
    def forward_stem(self, img: torch.Tensor
                     ) -> Tuple[torch.Tensor, CeiTGrid]:
        """I2T tokens (with the class token), pos_0 at the input, and every
        PE of the batch's token grid (computed once per batch).

        Returns:
            tuple[Tensor, CeiTGrid]: Tokens x_0 (B, extra + h * w, C) and
            what the blocks and the tail need.
        """
        x, hw = self.stem(img)
        x, pe = self._embed(x, hw)
        return x, CeiTGrid(hw, pe, self.num_extra_tokens, {})

    def forward_blocks(self,
                       x: torch.Tensor,
                       grid: CeiTGrid,
                       start: int = 0,
                       stop: Optional[int] = None) -> torch.Tensor:
        """Run blocks ``start .. stop - 1``, each with its layer-wise PE, and
        keep each block's LCA token in ``grid.layer_tokens``."""
        extra = grid.num_extra_tokens
        for i in range(start, self.num_layers if stop is None else stop):
            x = self.blocks[i](x, grid.pe.layers[i], grid.hw)
            grid.layer_tokens[i] = (x[:, 0] if self.lca_tokens == 'cls' else
                                    x[:, extra:].mean(1))
        return x

    def forward_tail(self, x: torch.Tensor, grid: CeiTGrid) -> torch.Tensor:
        """The LCA over the per-layer tokens, the Last LN and, for MPVG, the
        pooled Last-LN PE term: y = LN_last(LCA(t_1..t_L)) [+ term].

        Args:
            x (Tensor): x_L (unused: the LCA reads the per-layer tokens the
                blocks left in ``grid``; kept for the contract).
            grid (CeiTGrid): The grid of :meth:`forward_stem`, after
                :meth:`forward_blocks` ran every block.

        Returns:
            Tensor: (B, 1, C), one pooled token.
        """
        missing = [i for i in range(self.num_layers)
                   if i not in grid.layer_tokens]
        if missing:
            raise RuntimeError(f'The LCA needs the token of every block; '
                               f'blocks {missing} have not run on this grid.')
        tokens = torch.stack(
            [grid.layer_tokens[i] for i in range(self.num_layers)], 1)
        y = self.norm(self.lca(tokens))
        if grid.pe.last is not None:
            y = y + self._pooled_last_term(grid)
        return y

    def pooled_last_term(self, img_size=None) -> torch.Tensor:
        """What MPVG's Last-LN term adds to the pooled output at an input
        size (default ``img_size``): a constant, (C,)."""
        if not self.pe.has_last_term:
            raise ValueError(
                f'This MPVGCeiT (pe_mode={self.pe_mode!r}) has no Last-LN PE '
                'term.')
        if self.out_type == 'featmap':
            raise ValueError("The Last-LN PE term meets the pooled LCA token; "
                             "out_type='featmap' has none.")
        hw = (self.patch_resolution if img_size is None else
              self.token_grid(img_size))
        grid = CeiTGrid(hw, self.pe(hw), self.num_extra_tokens, {})
        return self._pooled_last_term(grid)[0, 0]

    def _pooled_last_term(self, grid: CeiTGrid) -> torch.Tensor:
        if self.last_ln_pe_pooling == 'after_ln':
            return grid.pe.last.mean(1, keepdim=True)
        # LN'_last(mean of pos_k)
        pos_k = self.pe.chain_step(grid.pe, grid.hw, self.pe.last_ln_pe)
        return self.pe.last_norm(pos_k.mean(1, keepdim=True))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """Args:
            x (Tensor): Images (B, C, H, W); any H, W.

        Returns:
            tuple[Tensor]: The pooled (B, C) output, or one (B, C, h, w) map
            per entry of ``out_indices`` for 'featmap'.
        """
        x, grid = self.forward_stem(x)
        if self.out_type != 'featmap':
            x = self.forward_blocks(x, grid)
            return (self.forward_tail(x, grid)[:, 0], )
        outs, done = [], 0
        for i in sorted(set(self.out_indices)):
            x = self.forward_blocks(x, grid, done, i + 1)
            done = i + 1
            outs.append(x[:, grid.num_extra_tokens:].reshape(
                x.shape[0], *grid.hw, -1).permute(0, 3, 1, 2))
        return tuple(outs)
