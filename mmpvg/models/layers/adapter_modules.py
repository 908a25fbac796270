# Copyright (c) mmpvg contributors. All rights reserved.
"""The modules of `ViT-Adapter <https://arxiv.org/abs/2205.08534>`_.

- :class:`SpatialPriorModule`: a small conv stem giving maps at strides
  4, 8, 16 and 32;
- :class:`Injector`: ``x = x + gamma * MSDeformAttn(LN(x), LN(c))``, the
  ViT tokens ``x`` query the adapter's multi-level sequence ``c``;
- :class:`Extractor`: ``c = c + MSDeformAttn(LN(c), LN(x))`` and a
  :class:`ConvFFN`;
- :class:`InteractionBlock`: the injector and extractor(s) around one group
  of ViT blocks.

mmcv's ``MultiScaleDeformableAttention`` (a compiled op) is imported when an
injector or extractor is built, not when this module is imported.
"""
import math
from typing import List

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.cnn.bricks.drop import DropPath
from torch.nn.modules.batchnorm import _BatchNorm

from .deform_geometry import Shapes


def _deformable_attention(**kwargs) -> nn.Module:
    from mmcv.ops import MultiScaleDeformableAttention
    return MultiScaleDeformableAttention(**kwargs)


class SpatialPriorModule(nn.Module):
    """The convolutional branch giving the adapter's spatial priors.

    A ResNet-like stem (3x3 stride-2 conv, two 3x3 convs, 3x3 stride-2 max
    pool; every conv followed by a norm and ReLU) gives stride 4 with
    ``inplanes`` channels; three 3x3 stride-2 convs give strides 8, 16 and
    32 with 2x, 4x and 4x ``inplanes`` channels. 1x1 convolutions project
    the four maps to ``embed_dims``. Each map has ``ceil(size / stride)``
    rows and columns, the token grid of a patch embedding that pads.

    Args:
        in_channels (int): Image channels. Defaults to 3.
        inplanes (int): Channels of the stem. Defaults to 64.
        embed_dims (int): Channels of the outputs. Defaults to 384.
        norm_cfg (dict): Norm after every 3x3 conv.
            Defaults to ``dict(type='BN')``.
    """

    def __init__(self,
                 in_channels: int = 3,
                 inplanes: int = 64,
                 embed_dims: int = 384,
                 norm_cfg: dict = dict(type='BN')):
        super().__init__()

        def conv3x3(cin, cout, stride):
            return ConvModule(cin, cout, 3, stride=stride, padding=1,
                              bias=False, norm_cfg=norm_cfg,
                              act_cfg=dict(type='ReLU'))

        self.stem = nn.Sequential(
            conv3x3(in_channels, inplanes, 2),
            conv3x3(inplanes, inplanes, 1),
            conv3x3(inplanes, inplanes, 1),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.conv2 = conv3x3(inplanes, 2 * inplanes, 2)
        self.conv3 = conv3x3(2 * inplanes, 4 * inplanes, 2)
        self.conv4 = conv3x3(4 * inplanes, 4 * inplanes, 2)
        self.projs = nn.ModuleList([
            nn.Conv2d(channels, embed_dims, 1)
            for channels in (inplanes, 2 * inplanes, 4 * inplanes,
                             4 * inplanes)
        ])

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Args:
            x (Tensor): Images (B, C, H, W).

        Returns:
            list[Tensor]: Maps (B, embed_dims, ceil(H / s), ceil(W / s)) at
            strides s = 4, 8, 16, 32.
        """
        c1 = self.stem(x)
        c2 = self.conv2(c1)
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        return [proj(c) for proj, c in zip(self.projs, (c1, c2, c3, c4))]


class ConvFFN(nn.Module):
    """FFN with a 3x3 depth-wise conv on each level's 2-D map.

    ``fc1 -> depth-wise 3x3 conv (per level) -> GELU -> dropout -> fc2 ->
    dropout``. The conv runs on every level separately (one set of
    weights), so it never mixes tokens of different levels.

    Args:
        embed_dims (int): Input and output width.
        hidden_dims (int): Hidden width.
        drop_rate (float): Dropout. Defaults to 0.
    """

    def __init__(self, embed_dims: int, hidden_dims: int,
                 drop_rate: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.dwconv = nn.Conv2d(hidden_dims, hidden_dims, 3, padding=1,
                                groups=hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, shapes: Shapes) -> torch.Tensor:
        """Args:
            x (Tensor): Tokens (B, N, C) of the levels in ``shapes``,
                concatenated in that order.
            shapes (list[tuple[int, int]]): (h, w) of each level.
        """
        x = self.fc1(x)
        B, _, C = x.shape
        levels = x.split([h * w for h, w in shapes], dim=1)
        x = torch.cat([
            self.dwconv(level.transpose(1, 2).reshape(B, C, h, w)).flatten(2)
            for level, (h, w) in zip(levels, shapes)
        ], dim=2).transpose(1, 2)
        return self.drop(self.fc2(self.drop(self.act(x))))


class Injector(nn.Module):
    """Injects the adapter's spatial features into the ViT tokens.

    ``x = x + gamma * MSDeformAttn(LN(x), LN(c))``: the ViT tokens query
    the adapter's multi-level sequence ``c``. ``gamma`` is a per-channel
    scale initialised to ``init_values`` (0: the injector starts as the
    identity and the pretrained ViT is unchanged at the start of training).

    Args:
        embed_dims (int): Token width.
        num_heads (int): Deformable attention heads.
        num_points (int): Sampling points per head and level.
        num_levels (int): Levels of ``c``. Defaults to 3.
        deform_ratio (float): Value projection width / ``embed_dims``.
        norm_cfg (dict): Config of the LayerNorms.
        init_values (float): Initial ``gamma``. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 num_points: int,
                 num_levels: int = 3,
                 deform_ratio: float = 1.0,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_values: float = 0.):
        super().__init__()
        self.query_norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.feat_norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = _deformable_attention(
            embed_dims=embed_dims, num_heads=num_heads,
            num_levels=num_levels, num_points=num_points, dropout=0.,
            batch_first=True, value_proj_ratio=deform_ratio)
        self.gamma = nn.Parameter(torch.full((embed_dims, ), init_values))

    def forward(self, x, c, reference_points, spatial_shapes,
                level_start_index):
        """Args:
            x (Tensor): ViT tokens (B, N, C), the queries.
            c (Tensor): Adapter sequence (B, Nc, C), the values.
            reference_points (Tensor): (1, N, num_levels, 2).
            spatial_shapes (Tensor): (num_levels, 2) of ``c``.
            level_start_index (Tensor): (num_levels, ) of ``c``.
        """
        # mmcv's attention returns output + identity; a zero identity keeps
        # the bare attention output so that gamma scales only that.
        out = self.attn(
            query=self.query_norm(x), value=self.feat_norm(c),
            identity=x.new_zeros(()), reference_points=reference_points,
            spatial_shapes=spatial_shapes, level_start_index=level_start_index)
        return x + self.gamma * out


class Extractor(nn.Module):
    """Extracts multi-level features from the ViT tokens into ``c``.

    ``c = c + MSDeformAttn(LN(c), LN(x))`` (the adapter's multi-level
    sequence queries the single-level ViT token map), then
    ``c = c + DropPath(ConvFFN(LN(c)))``.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Deformable attention heads.
        num_points (int): Sampling points per head.
        deform_ratio (float): Value projection width / ``embed_dims``.
        cffn_ratio (float): ConvFFN hidden width / ``embed_dims``.
        drop_rate (float): ConvFFN dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth of the ConvFFN branch.
        norm_cfg (dict): Config of the LayerNorms.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 num_points: int,
                 deform_ratio: float = 1.0,
                 cffn_ratio: float = 0.25,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6)):
        super().__init__()
        self.query_norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.feat_norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = _deformable_attention(
            embed_dims=embed_dims, num_heads=num_heads, num_levels=1,
            num_points=num_points, dropout=0., batch_first=True,
            value_proj_ratio=deform_ratio)
        self.ffn_norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = ConvFFN(embed_dims, int(embed_dims * cffn_ratio),
                           drop_rate)
        self.drop_path = (
            DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity())

    def forward(self, c, x, reference_points, spatial_shapes,
                level_start_index, c_shapes: Shapes):
        """Args:
            c (Tensor): Adapter sequence (B, Nc, C), the queries.
            x (Tensor): ViT tokens (B, N, C), the values.
            reference_points (Tensor): (1, Nc, 1, 2).
            spatial_shapes (Tensor): (1, 2), the ViT token grid.
            level_start_index (Tensor): (1, ).
            c_shapes (list[tuple[int, int]]): (h, w) of the levels of ``c``.
        """
        # identity=c: the residual is the un-normalised c (mmcv would
        # otherwise add the normalised query).
        c = self.attn(
            query=self.query_norm(c), value=self.feat_norm(x), identity=c,
            reference_points=reference_points, spatial_shapes=spatial_shapes,
            level_start_index=level_start_index)
        return c + self.drop_path(self.ffn(self.ffn_norm(c), c_shapes))


class InteractionBlock(nn.Module):
    """The injector before and the extractor(s) after one group of blocks.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Deformable attention heads.
        num_points (int): Sampling points per head and level.
        deform_ratio (float): Value projection width / ``embed_dims``.
        cffn_ratio (float): ConvFFN hidden width / ``embed_dims``.
        drop_rate (float): ConvFFN dropout.
        drop_path_rate (float): Stochastic depth of the ConvFFN branches.
        norm_cfg (dict): Config of the LayerNorms.
        init_values (float): Initial injector ``gamma``.
        num_extra_extractors (int): Extractors run after the first one
            (2 in the last interaction of ViT-Adapter). Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 num_points: int,
                 deform_ratio: float = 1.0,
                 cffn_ratio: float = 0.25,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_values: float = 0.,
                 num_extra_extractors: int = 0):
        super().__init__()
        self.injector = Injector(embed_dims, num_heads, num_points, 3,
                                 deform_ratio, norm_cfg, init_values)

        def extractor():
            return Extractor(embed_dims, num_heads, num_points, deform_ratio,
                             cffn_ratio, drop_rate, drop_path_rate, norm_cfg)

        self.extractor = extractor()
        self.extra_extractors = nn.ModuleList(
            [extractor() for _ in range(num_extra_extractors)])

    def extract(self, c, x, *args):
        """Run the extractor and the extra extractors (see
        :meth:`Extractor.forward`)."""
        for extractor in (self.extractor, *self.extra_extractors):
            c = extractor(c, x, *args)
        return c


def _kaiming_fan_out_(conv: nn.Module):
    """He-normal init by fan-out (out_channels / groups x kernel area)."""
    out_channels = (conv.out_channels if isinstance(conv, nn.Conv2d)
                    else conv.weight.shape[1] * conv.groups)
    fan_out = out_channels // conv.groups * math.prod(conv.kernel_size)
    nn.init.normal_(conv.weight, 0., math.sqrt(2. / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_adapter_weights(*parts: nn.Module):
    """Standard inits for adapter modules: trunc-normal(0.02) Linear with
    zero bias, He (fan-out) convs, norms 1/0, and each deformable attention
    by its own ``init_weights`` (after the generic Linear init, which would
    overwrite its own)."""
    from mmcv.ops import MultiScaleDeformableAttention
    from mmengine.model.weight_init import trunc_normal_
    for part in parts:
        for m in part.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                _kaiming_fan_out_(m)
            elif isinstance(m, (nn.LayerNorm, _BatchNorm, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    for part in parts:
        for m in part.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()
