# Copyright (c) mmpvg contributors. All rights reserved.
"""A ViTDet-style simple feature pyramid for plain (single-scale) ViTs.

`Exploring Plain Vision Transformer Backbones for Object Detection
<https://arxiv.org/abs/2203.16527>`_ (Li et al., ECCV 2022) builds the
multi-scale maps a detector needs from the *last* map of a plain ViT alone:
stride-2 transposed convolutions to go up, max pooling to go down, then a
1x1 and a 3x3 convolution (each with a norm) to the output width. With
:class:`MPVGViT` (``out_type='featmap'``, window attention in the
non-global blocks) this is the plain-ViT counterpart of
:class:`MPVGViTAdapter`, with no deformable attention anywhere.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule

from mmpvg.registry import register_model


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = super().forward(x)
        return x.permute(0, 3, 1, 2).contiguous()


def _norm(cfg: Optional[dict], channels: int) -> nn.Module:
    """A norm for (N, C, H, W) maps. ``dict(type='LN2d')`` (ViTDet's choice)
    is built here; any other type goes through mmcv's ``build_norm_layer``."""
    if cfg is None:
        return nn.Identity()
    cfg = dict(cfg)
    if cfg['type'] == 'LN2d':
        cfg.pop('type')
        cfg.pop('requires_grad', None)
        return LayerNorm2d(channels, **cfg)
    return build_norm_layer(cfg, channels)[1]


def _log2_factor(factor: float) -> int:
    k = math.log2(factor)
    if factor <= 0 or abs(k - round(k)) > 1e-6:
        raise ValueError(f'scale factors must be powers of two (4.0, 2.0, '
                         f'1.0, 0.5, 0.25, ...), got {factor!r}.')
    return int(round(k))


@register_model()
class SimpleFeaturePyramid(BaseModule):
    """ViTDet's simple feature pyramid from one backbone map.

    For each ``f`` in ``scale_factors`` (powers of two), the input map of
    stride ``s`` becomes a map of stride ``s / f``:

    - ``f = 2^k > 1``: ``k`` 2x2 stride-2 transposed convolutions, halving
      the channels each time, with a norm and ``act_cfg`` between them
      (ViTDet: ``4.0`` is deconv - LN - GELU - deconv, ``2.0`` one deconv);
    - ``f = 1``: the map itself;
    - ``f = 2^-k < 1``: ``k`` 2x2 stride-2 max poolings (``ceil_mode``);

    then a 1x1 convolution to ``out_channels`` with a norm and a 3x3
    convolution with a norm (both without bias when normed). ``num_outs``
    larger than ``len(scale_factors)`` appends stride-2 max poolings
    (``kernel_size=1``) of the last output, like ViTDet's top block and
    mmdet's ``FPN`` (e.g. the P6 level of the RPN).

    Sizes: for an input map of ``h`` rows, a level with ``f >= 1`` has
    ``h * f`` rows and one with ``f < 1`` has ``ceil(h * f)``. A plain ViT
    with patch ``p`` on an image of ``H`` rows gives ``h = ceil(H / p)``
    (the patch embedding pads), so every level has exactly
    ``ceil(H' / stride)`` rows, where ``H' = p * ceil(H / p)`` is the image
    padded to whole patches (``ceil(H / stride)`` for downsampled levels and
    whenever ``H`` is a multiple of ``p``; mmdet's data preprocessor pads
    to a multiple of 32 anyway).

    Args:
        in_channels (int): Channels of the backbone map.
        out_channels (int): Channels of every output.
        scale_factors (Sequence[float]): One per pyramid level, relative to
            the input map. Defaults to ViTDet's ``(4.0, 2.0, 1.0, 0.5)``
            (strides 4, 8, 16, 32 from a stride-16 ViT).
        in_index (int): Which backbone output to use. Defaults to -1.
        num_outs (int, optional): Number of outputs; extra levels are
            max-pooled from the last. Defaults to ``len(scale_factors)``.
        norm_cfg (dict, optional): Norm of the upsampling path and after
            the 1x1 and 3x3 convs. ``dict(type='LN2d')`` (default, ViTDet)
            is a LayerNorm over channels; 'BN', 'SyncBN', 'GN', ... are
            built by mmcv. ``None``: no norm (convs get a bias).
        act_cfg (dict): Activation between transposed convolutions.
            Defaults to ``dict(type='GELU')``.
        init_cfg (dict | list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 in_index: int = -1,
                 num_outs: Optional[int] = None,
                 norm_cfg: Optional[dict] = dict(type='LN2d', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if not scale_factors:
            raise ValueError('scale_factors must not be empty.')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scale_factors = tuple(float(f) for f in scale_factors)
        self.in_index = in_index
        self.num_outs = num_outs or len(self.scale_factors)
        if self.num_outs < len(self.scale_factors):
            raise ValueError(
                f'num_outs={num_outs} is fewer than the '
                f'{len(self.scale_factors)} scale_factors.')
        with_bias = norm_cfg is None

        self.stages = nn.ModuleList()
        for factor in self.scale_factors:
            k = _log2_factor(factor)
            layers, channels = [], in_channels
            for i in range(k):
                if i > 0:
                    layers += [_norm(norm_cfg, channels),
                               build_activation_layer(act_cfg)]
                layers.append(nn.ConvTranspose2d(
                    channels, channels // 2, kernel_size=2, stride=2))
                channels //= 2
            for _ in range(-k):
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            layers += [
                nn.Conv2d(channels, out_channels, 1, bias=with_bias),
                _norm(norm_cfg, out_channels),
                nn.Conv2d(out_channels, out_channels, 3, padding=1,
                          bias=with_bias),
                _norm(norm_cfg, out_channels),
            ]
            self.stages.append(nn.Sequential(*layers))

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
                ) -> Tuple[torch.Tensor, ...]:
        """Args:
            inputs (Tensor | Sequence[Tensor]): The backbone's outputs; the
                map ``inputs[in_index]`` of shape (B, in_channels, h, w) is
                used.

        Returns:
            tuple[Tensor]: ``num_outs`` maps (B, out_channels, h_i, w_i),
            finest first.
        """
        x = inputs if torch.is_tensor(inputs) else inputs[self.in_index]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'expected a (B, {self.in_channels}, h, w) map, got '
                f'{tuple(x.shape)}; a plain ViT needs out_type="featmap".')
        outs = [stage(x) for stage in self.stages]
        for _ in range(self.num_outs - len(outs)):
            outs.append(nn.functional.max_pool2d(
                outs[-1], kernel_size=1, stride=2, ceil_mode=True))
        return tuple(outs)
