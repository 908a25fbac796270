# Copyright (c) mmpvg contributors. All rights reserved.
"""The ViT stem: a strided convolution over patches, for images of any size."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.utils import to_2tuple

from mmpvg.utils.grid import token_grid


class PatchEmbed(nn.Module):
    """Conv patch embedding; pads bottom/right to a multiple of the patch.

    The token grid of an image is therefore ``ceil(size / patch)`` per side
    (:meth:`token_grid`).

    Args:
        in_channels (int): Image channels.
        embed_dims (int): Token width.
        patch_size (int | tuple[int, int]): Patch (and stride) size.
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size):
        super().__init__()
        self.patch_size = to_2tuple(patch_size)
        self.proj = nn.Conv2d(
            in_channels, embed_dims, self.patch_size, stride=self.patch_size)

    def token_grid(self, img_size):
        """The token grid (h, w) of an image size S or (H, W)."""
        return token_grid(img_size, self.patch_size)

    def forward(self, x: torch.Tensor):
        """Args:
            x (Tensor): Images (B, C, H, W).

        Returns:
            tuple[Tensor, tuple[int, int]]: Tokens (B, h * w, C) in row-major
            order and the grid (h, w).
        """
        ph, pw = self.patch_size
        pad_h, pad_w = -x.shape[-2] % ph, -x.shape[-1] % pw
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x)
        hw = (x.shape[-2], x.shape[-1])
        return x.flatten(2).transpose(1, 2), hw
