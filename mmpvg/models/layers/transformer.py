# Copyright (c) mmpvg contributors. All rights reserved.
"""A pre-norm ViT block whose attention input can take a position embedding.

Parameter names follow DeiT/timm (``norm1``, ``attn.qkv``, ``attn.proj``,
``norm2``, ``mlp.fc1``, ``mlp.fc2``) so that DeiT/LaPE weights map one to one.
A block can also attend within non-overlapping windows of the token grid
(ViTDet / ViT-Adapter's window attention); window attention adds no
parameters, so the same weights run with global or window attention.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import DropPath

from .window import window_partition, window_unpartition


class Attention(nn.Module):
    """Multi-head self-attention on ``F.scaled_dot_product_attention``.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of heads.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        attn_drop (float): Dropout on the attention weights. Defaults to 0.
        proj_drop (float): Dropout after the output projection.
            Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by num_heads ({num_heads}).')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """Two-layer GELU MLP (fc1 -> GELU -> dropout -> fc2 -> dropout)."""

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class TransformerBlock(nn.Module):
    """ViT block with an optional PE at the attention input.

    ``x' = x + MSA(LN_1(x) + pe)``; the PE never enters the residual stream
    or the MLP. With ``norm_after_attn`` (ViT-Lite / CCT), the residual stream
    is normalised after attention and feeds the MLP directly:
    ``x = LN_2(x'); x = x + MLP(x)``; otherwise ``x = x' + MLP(LN_2(x'))``.

    With ``window_size > 0`` the attention runs within non-overlapping
    windows of the token grid, as in ViTDet and ViT-Adapter: ``LN_1(x) + pe``
    is formed on the whole grid, zero-padded at the bottom/right to a
    multiple of the window (padded tokens are not masked), split into
    windows, attended (qkv, SDPA and output projection per window), merged
    and unpadded. A grid side not longer than the window is one window along
    that side and is not padded, so ``window_size >= max(h, w)`` is exactly
    global attention. Window attention needs every token on the grid, i.e.
    no class token.

    The feed-forward module is the MLP by default; ``ffn`` replaces it by
    another module (CeiT's LeFF), stored under the same name ``mlp`` so that
    the block's code path is one; DeiT names and checkpoints are unchanged.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of attention heads.
        feedforward_channels (int, optional): Hidden width of the MLP; must
            be None when ``ffn`` is given.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        drop_rate (float): Dropout after attention/MLP projections.
        attn_drop_rate (float): Dropout on attention weights.
        drop_path_rate (float): Stochastic depth of this block.
        norm_cfg (dict): Norm config. Defaults to LN with eps 1e-6.
        norm_after_attn (bool): ViT-Lite block layout. Defaults to False.
        window_size (int): Side of the attention windows; 0 attends
            globally. Defaults to 0.
        ffn (nn.Module, optional): Feed-forward module used instead of the
            MLP, called as ``ffn(x, hw)`` with the token grid (it may need
            it, as LeFF does). Defaults to None (the MLP).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: Optional[int],
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 norm_after_attn: bool = False,
                 window_size: int = 0,
                 ffn: Optional[nn.Module] = None):
        super().__init__()
        if (ffn is None) == (feedforward_channels is None):
            raise ValueError('Give either feedforward_channels (the MLP) or '
                             'ffn (another feed-forward module), not both '
                             'or neither.')
        if window_size < 0:
            raise ValueError(f'window_size must be >= 0, got {window_size}.')
        self.window_size = window_size
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = Attention(embed_dims, num_heads, qkv_bias, attn_drop_rate,
                              drop_rate)
        self.drop_path = (
            DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity())
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn_takes_grid = ffn is not None
        self.mlp = (Mlp(embed_dims, feedforward_channels, drop_rate)
                    if ffn is None else ffn)
        self.norm_after_attn = norm_after_attn

    def forward(self,
                x: torch.Tensor,
                pos_embed: Optional[torch.Tensor] = None,
                hw: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Args:
            x (Tensor): Tokens of shape (B, N, C).
            pos_embed (Tensor, optional): PE added to the attention input
                ``LN_1(x)``, broadcastable to (B, N, C).
            hw (tuple[int, int], optional): The token grid (h, w) with
                ``h * w == N``; needed by window attention only.

        Returns:
            Tensor: Tokens of shape (B, N, C).
        """
        attn_in = self.norm1(x)
        if pos_embed is not None:
            attn_in = attn_in + pos_embed
        x = x + self.drop_path(self._attend(attn_in, hw))
        if self.norm_after_attn:
            x = self.norm2(x)
            return x + self.drop_path(self._feed_forward(x, hw))
        return x + self.drop_path(self._feed_forward(self.norm2(x), hw))

    def _feed_forward(self, x: torch.Tensor, hw) -> torch.Tensor:
        return self.mlp(x, hw) if self.ffn_takes_grid else self.mlp(x)

    def _attend(self, x: torch.Tensor, hw) -> torch.Tensor:
        if self.window_size == 0:
            return self.attn(x)
        if hw is None:
            raise ValueError('Window attention needs the token grid: call '
                             'the block with hw=(h, w).')
        h, w = hw
        if h * w != x.shape[1]:
            raise ValueError(
                f'Window attention needs every token on the {h}x{w} grid, '
                f'got {x.shape[1]} tokens (a class token cannot be windowed).')
        window = (min(self.window_size, h), min(self.window_size, w))
        windows, padded_hw = window_partition(x, hw, window)
        return window_unpartition(self.attn(windows), hw, padded_hw, window)
