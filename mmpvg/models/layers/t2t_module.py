# Copyright (c) mmpvg contributors. All rights reserved.
"""The Performer tokens-to-token stem of T2T-ViT (Yuan et al., ICCV 2021).

mmpretrain's ``T2T_ViT`` only has the transformer variant of this stem; the
paper's T2T-ViT-7 uses the Performer one. The stem alternates *soft splits*
(overlapping patches unfolded into tokens, ``nn.Unfold``) with token
Performer layers (linear attention with positive random features), and ends
with a linear projection to the encoder width.

Sub-module and parameter names are those of the official T2T-ViT code
(``soft_split0/1/2``, ``attention1/2`` with ``kqv``, ``proj``, ``norm1``,
``norm2``, ``mlp.0``, ``mlp.2`` and the fixed random features ``w``, and
``project``), so an official ``tokens_to_token.*`` state dict maps one to one
onto this module.
"""
import math
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

from mmpvg.utils.grid import as_pair

Grid = Tuple[int, int]


def unfold_grid(hw: Sequence[int], kernel_size: int, stride: int,
                padding: int) -> Grid:
    """The grid ``nn.Unfold(kernel_size, stride=stride, padding=padding)``
    gives on an ``hw`` grid: ``(size + 2 * padding - kernel) // stride + 1``
    per side.

    Raises:
        ValueError: If the input is smaller than the kernel (padded).
    """
    out = tuple((n + 2 * padding - kernel_size) // stride + 1 for n in hw)
    if min(out) < 1:
        raise ValueError(
            f'A {hw[0]}x{hw[1]} input is too small for a soft split with '
            f'kernel {kernel_size}, stride {stride}, padding {padding}.')
    return out


class TokenPerformer(nn.Module):
    """One token Performer layer of the T2T stem (official
    ``Token_performer``, one head).

    With ``k, q, v = kqv(LN_1(x))`` (in that order) and the positive random
    features ``phi(z) = exp(w z - |z|^2 / 2) / sqrt(m)`` of ``m`` fixed
    random directions ``w``:

    ``y = v + proj(phi(q) (phi(k)^T v) / (phi(q) sum_t phi(k_t) + eps))``,
    ``out = y + MLP(LN_2(y))``.

    The skip connection is on ``v`` (the width changes from ``dims`` to
    ``embed_dims``), as in the official code.

    Args:
        dims (int): Width of the input tokens.
        embed_dims (int): Width of q, k, v and of the output.
        kernel_ratio (float): ``m = int(embed_dims * kernel_ratio)`` random
            features. Defaults to 0.5.
        drop_rate (float): Dropout after ``proj`` and after the MLP; the
            official code uses 0.1. Defaults to 0.1.
        norm_cfg (dict): Config of the two LayerNorms. Defaults to LN with
            eps 1e-5 (PyTorch's, as the official code).
    """
    eps = 1e-8  # keeps the normaliser away from 0, as the official code

    def __init__(self,
                 dims: int,
                 embed_dims: int,
                 kernel_ratio: float = 0.5,
                 drop_rate: float = 0.1,
                 norm_cfg: dict = dict(type='LN', eps=1e-5)):
        super().__init__()
        self.embed_dims = embed_dims
        self.kqv = nn.Linear(dims, 3 * embed_dims)
        self.dp = nn.Dropout(drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.norm1 = build_norm_layer(norm_cfg, dims)[1]
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, embed_dims), nn.GELU(),
            nn.Linear(embed_dims, embed_dims), nn.Dropout(drop_rate))
        self.num_features = int(embed_dims * kernel_ratio)
        if self.num_features < 1:
            raise ValueError(f'kernel_ratio={kernel_ratio} gives no random '
                             f'feature for width {embed_dims}.')
        # Orthogonal random directions scaled by sqrt(m), fixed: a parameter
        # that is never trained (the official code; the paper counts it).
        w = nn.init.orthogonal_(torch.empty(self.num_features, embed_dims))
        self.w = nn.Parameter(w * math.sqrt(self.num_features),
                              requires_grad=False)

    def kernel_features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) = exp(w x - |x|^2 / 2) / sqrt(m), shape (B, N, m)."""
        sq = (x * x).sum(dim=-1, keepdim=True) / 2
        return torch.exp(x @ self.w.t().to(x.dtype) - sq) / math.sqrt(
            self.num_features)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        k, q, v = self.kqv(x).split(self.embed_dims, dim=-1)
        # The exponential kernel overflows in half precision: under mixed
        # precision the attention itself runs in float32.
        dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            k, q, v = k.to(dtype), q.to(dtype), v.to(dtype)
            kp, qp = self.kernel_features(k), self.kernel_features(q)
            # linear attention: an (B, m, C) summary of keys and values, O(N)
            kv = kp.transpose(1, 2) @ v
            # normaliser phi(q) . sum_t phi(k_t), shape (B, N, 1)
            norm = qp @ kp.sum(dim=1, keepdim=True).transpose(1, 2)
            y = (qp @ kv) / (norm + self.eps)
        return (v + self.dp(self.proj(y.to(x.dtype)))).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x (Tensor): Tokens (B, N, dims).

        Returns:
            Tensor: Tokens (B, N, embed_dims).
        """
        x = self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class T2TModule(nn.Module):
    """The Performer tokens-to-token stem, for images of any size.

    ``soft_split0`` unfolds the image into overlapping patches; each
    following step re-structures the tokens with a :class:`TokenPerformer`
    (``attention{i}``), folds them back into their grid and soft-splits
    again; ``project`` maps the last split's tokens to ``embed_dims``.
    T2T-ViT's defaults (kernels 7/3/3, strides 4/2/2, paddings 2/1/1, token
    width 64) give 147 -> 64, 576 -> 64, 576 -> ``embed_dims`` and a 14x14
    grid at 224x224.

    Names follow the official code (see the module docstring), so official
    ``tokens_to_token.`` weights load after renaming the prefix.

    Args:
        in_channels (int): Image channels. Defaults to 3.
        embed_dims (int): Width of the output tokens. Defaults to 256.
        token_dims (int): Width of the tokens inside the stem. Defaults to 64.
        kernel_sizes (Sequence[int]): Kernel of each soft split.
            Defaults to (7, 3, 3).
        strides (Sequence[int]): Stride of each soft split.
            Defaults to (4, 2, 2).
        paddings (Sequence[int]): Zero padding of each soft split.
            Defaults to (2, 1, 1).
        kernel_ratio (float): Random features per token width in the
            Performer layers. Defaults to 0.5.
        drop_rate (float): Dropout inside the Performer layers (0.1 in the
            official code). Defaults to 0.1.
        norm_cfg (dict): Config of the Performer layers' LayerNorms.
            Defaults to LN with eps 1e-5.
    """

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 256,
                 token_dims: int = 64,
                 kernel_sizes: Sequence[int] = (7, 3, 3),
                 strides: Sequence[int] = (4, 2, 2),
                 paddings: Sequence[int] = (2, 1, 1),
                 kernel_ratio: float = 0.5,
                 drop_rate: float = 0.1,
                 norm_cfg: dict = dict(type='LN', eps=1e-5)):
        super().__init__()
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.strides = tuple(int(s) for s in strides)
        self.paddings = tuple(int(p) for p in paddings)
        n = len(self.kernel_sizes)
        if n < 1 or len(self.strides) != n or len(self.paddings) != n:
            raise ValueError(
                f'kernel_sizes={tuple(kernel_sizes)}, strides='
                f'{tuple(strides)} and paddings={tuple(paddings)} must give '
                'one value per soft split (at least one).')
        if (min(self.kernel_sizes) < 1 or min(self.strides) < 1
                or min(self.paddings) < 0):
            raise ValueError('Soft-split kernels and strides must be >= 1 '
                             'and paddings >= 0.')
        self.num_splits = n
        self.token_dims = token_dims
        for i, (k, s, p) in enumerate(zip(self.kernel_sizes, self.strides,
                                          self.paddings)):
            setattr(self, f'soft_split{i}',
                    nn.Unfold(kernel_size=k, stride=s, padding=p))
        for i in range(1, n):
            dims = (in_channels if i == 1 else token_dims) * \
                self.kernel_sizes[i - 1] ** 2
            setattr(self, f'attention{i}',
                    TokenPerformer(dims, token_dims, kernel_ratio, drop_rate,
                                   norm_cfg))
        last_in = (in_channels if n == 1 else token_dims) * \
            self.kernel_sizes[-1] ** 2
        self.project = nn.Linear(last_in, embed_dims)

    @property
    def stride(self) -> int:
        """Pixels between neighbouring output tokens."""
        return math.prod(self.strides)

    def token_grid(self, img_size) -> Grid:
        """The output token grid (h, w) for an image size (H, W) or S."""
        hw = as_pair(img_size, 'image size')
        for k, s, p in zip(self.kernel_sizes, self.strides, self.paddings):
            hw = unfold_grid(hw, k, s, p)
        return hw

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Grid]:
        """Args:
            x (Tensor): Images (B, C, H, W), any H and W the splits fit.

        Returns:
            tuple[Tensor, tuple[int, int]]: Tokens (B, h * w, embed_dims) in
            row-major order and the grid (h, w), like ``PatchEmbed``.
        """
        hw = tuple(x.shape[-2:])
        for i in range(self.num_splits):
            if i:  # tokens back onto their grid before the next split
                x = getattr(self, f'attention{i}')(x)
                x = x.transpose(1, 2).reshape(x.shape[0], -1, *hw)
            hw = unfold_grid(hw, self.kernel_sizes[i], self.strides[i],
                             self.paddings[i])
            x = getattr(self, f'soft_split{i}')(x).transpose(1, 2)
        return self.project(x), hw
