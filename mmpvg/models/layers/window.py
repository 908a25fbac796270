# Copyright (c) mmpvg contributors. All rights reserved.
"""Non-overlapping window attention helpers (ViTDet / ViT-Adapter).

Free functions, so that any block can attend within windows of its token
grid; windows add no parameters.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F


def window_partition(x: torch.Tensor, hw: Sequence[int],
                     window: Tuple[int, int]):
    """Split a token grid into non-overlapping windows, zero-padding it.

    Args:
        x (Tensor): Tokens of shape (B, h * w, C) in row-major grid order.
        hw (tuple[int, int]): The grid (h, w).
        window (tuple[int, int]): Window height and width.

    Returns:
        tuple[Tensor, tuple[int, int]]: Windows of shape
        (B * num_windows, wh * ww, C) and the padded grid (Hp, Wp).
    """
    B, _, C = x.shape
    (h, w), (wh, ww) = hw, window
    x = x.reshape(B, h, w, C)
    pad_h, pad_w = -h % wh, -w % ww
    if pad_h or pad_w:  # bottom/right; padded tokens are zeros, not masked
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = h + pad_h, w + pad_w
    x = x.reshape(B, Hp // wh, wh, Wp // ww, ww, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, C), (Hp, Wp)


def window_unpartition(windows: torch.Tensor, hw: Sequence[int],
                       padded_hw: Sequence[int],
                       window: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: merge windows, drop the padding.

    Returns:
        Tensor: Tokens of shape (B, h * w, C).
    """
    (h, w), (Hp, Wp), (wh, ww) = hw, padded_hw, window
    C = windows.shape[-1]
    x = windows.reshape(-1, Hp // wh, Wp // ww, wh, ww, C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, Hp, Wp, C)
    return x[:, :h, :w].reshape(-1, h * w, C)
