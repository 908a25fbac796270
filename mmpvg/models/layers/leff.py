# Copyright (c) mmpvg contributors. All rights reserved.
"""CeiT's locally-enhanced feed-forward module (LeFF).

"Incorporating Convolution Designs into Visual Transformers" (Yuan et al.,
ICCV 2021) replaces the ViT MLP by a 1x1 expansion, a depthwise kxk
convolution over the token grid and a 1x1 reduction, each followed by
BatchNorm (and GELU after the first two). Only the patch tokens have a place
on the grid; extra (class-token) rows are handled as ``extra_tokens`` says.
"""
from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

EXTRA_TOKEN_MODES = ('bypass', 'concat')


class LeFF(nn.Module):
    """Locally-enhanced feed-forward on the token grid.

    ``y_p = BN_3(W_3 * GELU(BN_2(DW_k * GELU(BN_1(W_1 * p)))))`` for the patch
    tokens ``p`` reshaped to (B, C, h, w) (``W_1``, ``W_3`` 1x1 convolutions,
    ``DW_k`` depthwise kxk with zero padding k // 2).

    Args:
        embed_dims (int): Token width C.
        hidden_dims (int): Expanded width (CeiT: 4 C).
        kernel_size (int): Side of the depthwise kernel (odd). Defaults to 3.
        conv_bias (bool): Bias in the three convolutions. CeiT does not say
            (it writes linear projections, which have one); a reading.
            Defaults to True.
        extra_tokens (str): What the feed-forward gives the extra
            (class-token) rows, which are not on the grid. ``'bypass'``
            (default): zero, so the block's residual leaves the class token
            as attention left it. ``'concat'``: the input row itself, CeiT's
            "concatenate the class token back" read literally, so the
            residual adds ``LN_2(x_cls)`` to it. A reading.
        norm_cfg (dict): Norm after each convolution. Defaults to BN.
        drop (float): Dropout on the output. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 hidden_dims: int,
                 kernel_size: int = 3,
                 conv_bias: bool = True,
                 extra_tokens: str = 'bypass',
                 norm_cfg: dict = dict(type='BN'),
                 drop: float = 0.):
        super().__init__()
        if extra_tokens not in EXTRA_TOKEN_MODES:
            raise ValueError(f'extra_tokens={extra_tokens!r} is not '
                             f'supported; choose from {EXTRA_TOKEN_MODES}.')
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError('kernel_size must be a positive odd int (the '
                             f'grid keeps its size), got {kernel_size}.')
        self.extra_tokens = extra_tokens
        self.conv1 = nn.Conv2d(embed_dims, hidden_dims, 1, bias=conv_bias)
        self.norm1 = build_norm_layer(norm_cfg, hidden_dims)[1]
        self.dwconv = nn.Conv2d(
            hidden_dims, hidden_dims, kernel_size, padding=kernel_size // 2,
            groups=hidden_dims, bias=conv_bias)
        self.norm2 = build_norm_layer(norm_cfg, hidden_dims)[1]
        self.conv2 = nn.Conv2d(hidden_dims, embed_dims, 1, bias=conv_bias)
        self.norm3 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.act = nn.GELU()
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, hw: Sequence[int]) -> torch.Tensor:
        """Args:
            x (Tensor): Tokens (B, extra + h * w, C), patch tokens last in
                row-major order.
            hw (tuple[int, int]): The token grid (h, w).

        Returns:
            Tensor: (B, extra + h * w, C).
        """
        B, N, C = x.shape
        h, w = hw
        extra = N - h * w
        if extra < 0:
            raise ValueError(f'{N} tokens cannot hold a {h}x{w} grid.')
        p = x[:, extra:].transpose(1, 2).reshape(B, C, h, w)
        p = self.act(self.norm1(self.conv1(p)))
        p = self.act(self.norm2(self.dwconv(p)))
        p = self.norm3(self.conv2(p)).flatten(2).transpose(1, 2)
        if extra:
            head = (x[:, :extra] if self.extra_tokens == 'concat' else
                    x.new_zeros(B, extra, C))
            p = torch.cat([head, p], dim=1)
        return self.drop(p)
