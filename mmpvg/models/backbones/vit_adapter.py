# Copyright (c) mmpvg contributors. All rights reserved.
"""ViT-Adapter around :class:`MPVGViT`, for detection and segmentation.

`Vision Transformer Adapter for Dense Predictions
<https://arxiv.org/abs/2205.08534>`_ (Chen et al., ICLR 2023) turns a plain
ViT into a four-level feature pyramid with a small convolutional branch that
talks to the ViT through deformable cross-attention:

- a spatial prior module (SPM, a ResNet-like conv stem) gives maps at
  strides 4, 8, 16 and 32; the stride 8/16/32 maps plus a level embedding,
  flattened and concatenated, are the adapter's feature sequence ``c``;
- before each group of ViT blocks an *injector* adds
  ``gamma * MSDeformAttn(LN(x), LN(c))`` to the ViT tokens ``x``; ``gamma``
  starts at zero, so an untrained adapter leaves the ViT unchanged;
- after the group an *extractor* updates ``c`` with
  ``MSDeformAttn(LN(c), LN(x))`` and a ConvFFN;
- the outputs are ``c`` split back into maps, plus the ViT token map.

Everything ViT-side is inherited from :class:`MPVGViT` (same parameter
names, so a classification checkpoint's backbone loads unchanged), including
the position-embedding structures of MPVG and its baselines: each block keeps
its own PE (``pe.layers``) computed once per forward for the image's token
grid, and MPVG's Last-LN term ``LN'_last(pos_0)`` is added to the ViT token
map after the final ``norm``, i.e. where a dense head sees it. The paper
does not say how the Last-LN PE reaches dense tasks; this is our choice.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.cnn.bricks.drop import DropPath
from mmcv.ops import MultiScaleDeformableAttention
from mmengine.logging import print_log
from mmengine.model.weight_init import trunc_normal_
from torch.nn.modules.batchnorm import _BatchNorm

from mmpvg.registry import register_model
from .mpvg_vit import MPVGViT

Shapes = List[Tuple[int, int]]


def reference_points(query_shapes: Shapes, query_strides: Shapes,
                     value_shapes: Shapes, value_strides: Shapes,
                     device=None) -> torch.Tensor:
    """Normalised reference points of query grids on value grids.

    The reference point of a query token is the centre of its cell in image
    pixels, ``stride * (index + 0.5)``, divided by the extent
    ``size * stride`` of each value level. On an image whose sides are
    multiples of every stride this is the usual ``(index + 0.5) / size``;
    on other sizes the levels cover slightly different (padded) extents and
    pixel coordinates keep a query on the very spot it came from.

    Args:
        query_shapes (list[tuple[int, int]]): (h, w) of each query grid, in
            the order the query tokens are concatenated.
        query_strides (list[tuple[int, int]]): (vertical, horizontal)
            stride of each query grid.
        value_shapes (list[tuple[int, int]]): (h, w) of each value level.
        value_strides (list[tuple[int, int]]): Strides of each value level.
        device (torch.device, optional): Device of the result.

    Returns:
        Tensor: Shape (1, num_queries, num_value_levels, 2), as (x, y) in
        [0, 1], the layout of ``MultiScaleDeformableAttention``.
    """
    centres = []
    for (h, w), (sy, sx) in zip(query_shapes, query_strides):
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * sy
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * sx
        y, x = torch.meshgrid(ys, xs, indexing='ij')
        centres.append(torch.stack([x.reshape(-1), y.reshape(-1)], -1))
    extents = torch.tensor([[w * sx, h * sy] for (h, w), (sy, sx) in zip(
        value_shapes, value_strides)], dtype=torch.float32, device=device)
    return (torch.cat(centres)[:, None, :] / extents)[None]


def level_layout(shapes: Shapes, device=None):
    """``spatial_shapes`` and ``level_start_index`` of flattened levels."""
    spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=device)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    return spatial_shapes, level_start_index


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
        self.attn = MultiScaleDeformableAttention(
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
        self.attn = MultiScaleDeformableAttention(
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


@register_model()
class MPVGViTAdapter(MPVGViT):
    """ViT-Adapter on :class:`MPVGViT`: a 4-level pyramid for dense tasks.

    A PyTorch implementation of the ViT-Adapter of `Vision Transformer
    Adapter for Dense Predictions <https://arxiv.org/abs/2205.08534>`_
    around the position-embedding structures of `MPVG
    <https://arxiv.org/abs/2502.02919>`_, for mmdet (e.g. Mask R-CNN + FPN)
    and mmseg (e.g. UperNet).

    The ViT (``patch_embed``, ``pe``, ``blocks``, ``norm``) is
    :class:`MPVGViT` without class token, so a classification checkpoint's
    backbone loads unchanged with ``init_cfg=dict(type='Pretrained',
    checkpoint=..., prefix='backbone.')``: pos_0 is resized to ``img_size``
    on load, a class-token checkpoint ('cls', 'lape') loses its class token
    and class-token PE row (both logged). Every adapter parameter is under
    ``spm.``, ``level_embed``, ``interactions.``, ``up.`` or ``out_norms.``
    (:attr:`ADAPTER_PREFIXES`).

    Forward, on an image of any size (H, W):

    1. ``spm`` gives c1..c4 at strides 4/8/16/32 (``ceil(H / s)`` rows);
       c2..c4 plus ``level_embed`` are flattened into the sequence ``c``.
    2. The patch tokens get pos_0 at the input as the ``pe_mode`` says; all
       PEs of the token grid are computed once (``self.pe(hw)``).
    3. For each ``[start, end]`` of ``interaction_indexes``: the injector,
       blocks ``start..end`` (each with its own PE ``pe.layers[i]`` and
       window or global attention), the extractor(s).
    4. The ViT token map is ``norm(x)`` plus, for MPVG, the Last-LN PE term
       ``LN'_last(pos_k)`` (the paper does not say how MPVG's Last-LN PE
       reaches dense tasks; adding it where the classifier adds it, to the
       token map the heads see, is our choice).
    5. ``c`` is split back into c2..c4; c1 += ``up(c2)`` (2x2 stride-2
       transposed conv); the ViT token map is resized to each level and
       added (``add_vit_feature``); each level has its own norm
       (``out_norms``).

    Map sizes are exact for any input: the ViT map is resized by its exact
    stride ratio and cropped (or, downwards, edge-padded to whole cells) to
    each level's size, and deformable-attention reference points are cell
    centres in image pixels, so inputs that are not multiples of 32 stay
    aligned. On multiples of 32 this is plain bilinear resizing and the
    usual ``(i + 0.5) / size`` reference points.

    Args:
        arch (str | dict): ViT arch, see :class:`MPVGViT`.
            Defaults to 'deit-tiny' (ViT-Adapter-Ti).
        pe_mode (str): 'cls', 'gap', 'lape', 'pvg' or 'mpvg' (class-token
            modes run without their class token). Defaults to 'mpvg'.
        pe_at_input, layerwise_pe, pe_first_block, hierarchical_pe,
            last_ln_pe: PE ablation switches, see :class:`MPVGViT`.
        img_size (int | tuple, optional): Grid pos_0 is stored for (and
            resized to on load). Defaults to the arch's (224).
        patch_size (int | tuple, optional): Defaults to the arch's (16).
        in_channels (int): Image channels. Defaults to 3.
        qkv_bias (bool, optional): Bias in qkv. Defaults to the arch's.
        drop_rate (float): Dropout of the ViT and the ConvFFNs.
        attn_drop_rate (float): ViT attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linear over the ViT
            blocks; the extractors' ConvFFN branches use this rate.
            Defaults to 0.1.
        window_size (int): Window attention in every block not in
            ``global_attn_indexes``; 0 for global attention everywhere
            (as in segmentation). Defaults to 14.
        global_attn_indexes (Sequence[int]): Blocks with global attention.
            Defaults to (2, 5, 8, 11).
        norm_cfg (dict): The LayerNorms of the ViT and of the adapter's
            attention/FFN inputs. Defaults to ``dict(type='LN', eps=1e-6)``.
        final_norm (bool): Apply the ViT's final norm to the token map.
            Defaults to True.
        frozen_stages (int): Freeze the ViT stem and blocks 1..k (the
            adapter is never frozen), see :class:`MPVGViT`. Defaults to -1.
        interpolate_mode (str): pos_0 interpolation mode.
            Defaults to 'bicubic'.
        conv_inplane (int): Stem channels of the spatial prior module.
            Defaults to 64.
        n_points (int): Sampling points per head and level. Defaults to 4.
        deform_num_heads (int): Deformable attention heads. Defaults to 6.
        init_values (float): Initial injector ``gamma``. Defaults to 0.
        cffn_ratio (float): ConvFFN hidden width / ``embed_dims``.
            Defaults to 0.25.
        deform_ratio (float): Deformable attention value width /
            ``embed_dims``. Defaults to 1.0.
        interaction_indexes (Sequence[Sequence[int]]): ``[start, end]``
            blocks of each interaction, consecutive and covering every block.
            Defaults to ``[[0, 2], [3, 5], [6, 8], [9, 11]]``.
        add_vit_feature (bool): Add the ViT token map to the outputs.
            Without it the final norm and the Last-LN PE get no gradient.
            Defaults to True.
        use_extra_extractor (bool): Two more extractors after the last
            interaction. Defaults to True.
        vit_feature_source (str): Which ViT token maps are added to the
            outputs. 'interactions' (default, ViT-Adapter's wiring): the
            token map after interaction i is added to level i (strides 4,
            8, 16, 32); the last one is y = LN_last(x_L) [+ LN'_last(pos_k)],
            the per-token feature the classifier was pretrained on, which
            is how MPVG's Last-LN PE reaches dense heads (the paper does not
            say; every pe_mode gets the same Last LN, so the comparison is
            fair). Needs 4 interactions. 'final': that last map at every
            level.
        spm_norm_cfg (dict): Norm of the spatial prior module's convs.
            Defaults to ``dict(type='BN')``; use SyncBN for multi-GPU.
        out_norm_cfg (dict): Norm of each output level.
            Defaults to ``dict(type='BN')``; use SyncBN for multi-GPU.
        init_cfg (dict, optional): Initialization config, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """
    ADAPTER_PREFIXES = ('spm.', 'level_embed', 'interactions.', 'up.',
                        'out_norms.')
    LEVEL_STRIDES = (4, 8, 16, 32)
    VIT_FEATURE_SOURCES = ('final', 'interactions')

    def __init__(self,
                 arch: Union[str, dict] = 'deit-tiny',
                 pe_mode: str = 'mpvg',
                 pe_at_input: Optional[bool] = None,
                 layerwise_pe: Optional[bool] = None,
                 pe_first_block: Optional[bool] = None,
                 hierarchical_pe: Optional[bool] = None,
                 last_ln_pe: Optional[Union[int, bool]] = None,
                 img_size=None,
                 patch_size=None,
                 in_channels: int = 3,
                 qkv_bias: Optional[bool] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 window_size: int = 14,
                 global_attn_indexes: Sequence[int] = (2, 5, 8, 11),
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = True,
                 frozen_stages: int = -1,
                 interpolate_mode: str = 'bicubic',
                 conv_inplane: int = 64,
                 n_points: int = 4,
                 deform_num_heads: int = 6,
                 init_values: float = 0.,
                 cffn_ratio: float = 0.25,
                 deform_ratio: float = 1.0,
                 interaction_indexes: Sequence[Sequence[int]] = (
                     (0, 2), (3, 5), (6, 8), (9, 11)),
                 add_vit_feature: bool = True,
                 use_extra_extractor: bool = True,
                 vit_feature_source: str = 'interactions',
                 spm_norm_cfg: dict = dict(type='BN'),
                 out_norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[dict] = None):
        super().__init__(
            arch=arch, pe_mode=pe_mode, with_cls_token=False,
            pe_at_input=pe_at_input, layerwise_pe=layerwise_pe,
            pe_first_block=pe_first_block, hierarchical_pe=hierarchical_pe,
            last_ln_pe=last_ln_pe, img_size=img_size, patch_size=patch_size,
            in_channels=in_channels, out_indices=-1, out_type='featmap',
            qkv_bias=qkv_bias, drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate,
            window_size=window_size, global_attn_indexes=global_attn_indexes,
            norm_cfg=norm_cfg, final_norm=final_norm,
            frozen_stages=frozen_stages, interpolate_mode=interpolate_mode,
            init_cfg=init_cfg)
        self.interaction_indexes = self._parse_interaction_indexes(
            interaction_indexes)
        if vit_feature_source not in self.VIT_FEATURE_SOURCES:
            raise ValueError(
                f'vit_feature_source={vit_feature_source!r} is not '
                f'supported; choose from {self.VIT_FEATURE_SOURCES}.')
        if (vit_feature_source == 'interactions'
                and len(self.interaction_indexes) != 4):
            raise ValueError(
                "vit_feature_source='interactions' adds the output of "
                'interaction i to level i, so it needs 4 interactions, got '
                f'{len(self.interaction_indexes)}.')
        self.vit_feature_source = vit_feature_source
        self.add_vit_feature = add_vit_feature
        D = self.embed_dims

        self.spm = SpatialPriorModule(in_channels, conv_inplane, D,
                                      spm_norm_cfg)
        self.level_embed = nn.Parameter(torch.zeros(3, D))
        num_interactions = len(self.interaction_indexes)
        self.interactions = nn.ModuleList([
            InteractionBlock(
                D, deform_num_heads, n_points, deform_ratio=deform_ratio,
                cffn_ratio=cffn_ratio, drop_rate=drop_rate,
                drop_path_rate=drop_path_rate, norm_cfg=norm_cfg,
                init_values=init_values,
                num_extra_extractors=(
                    2 if use_extra_extractor and i == num_interactions - 1
                    else 0))
            for i in range(num_interactions)
        ])
        self.up = nn.ConvTranspose2d(D, D, kernel_size=2, stride=2)
        self.out_norms = nn.ModuleList(
            [build_norm_layer(out_norm_cfg, D)[1] for _ in range(4)])

        self._init_adapter(init_values)
        self._register_load_state_dict_pre_hook(self._drop_cls_token_on_load)

    def _parse_interaction_indexes(self, interaction_indexes):
        parsed = [tuple(int(i) for i in pair) for pair in interaction_indexes]
        expected_start = 0
        for pair in parsed:
            if (len(pair) != 2 or pair[0] != expected_start
                    or pair[1] < pair[0]):
                raise ValueError(
                    f'interaction_indexes={interaction_indexes} must be '
                    '[start, end] pairs of consecutive blocks covering every '
                    f'block 0..{self.num_layers - 1} in order, e.g. '
                    '[[0, 2], [3, 5], [6, 8], [9, 11]] for 12 blocks.')
            expected_start = pair[1] + 1
        if expected_start != self.num_layers:
            raise ValueError(
                f'interaction_indexes={interaction_indexes} cover blocks '
                f'0..{expected_start - 1}, but the ViT has {self.num_layers} '
                'blocks; every block must belong to one interaction.')
        return parsed

    def _init_adapter(self, init_values: float):
        """Standard inits for the adapter (the ViT is initialised by
        :class:`MPVGViT`): trunc-normal(0.02) Linear, He (fan-out) convs,
        norms 1/0, deformable attention by its own ``init_weights``,
        ``level_embed`` normal, injector ``gamma`` = ``init_values``.

        The adapter's modules are plain ``nn.Module`` s, so mmengine's
        ``init_weights`` (which re-runs the ``init_weights`` of
        ``BaseModule`` children) leaves them as initialised here and only
        loads a ``Pretrained`` checkpoint."""
        adapter = [self.spm, self.interactions, self.up, self.out_norms]
        for part in adapter:
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
        # after the generic Linear init, which would overwrite its own
        for m in self.interactions.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()
        nn.init.normal_(self.level_embed)
        for interaction in self.interactions:
            nn.init.constant_(interaction.injector.gamma, init_values)

    def _drop_cls_token_on_load(self, state_dict, prefix, *args, **kwargs):
        """A class-token checkpoint's ``cls_token`` has no place here."""
        name = prefix + 'cls_token'
        if name in state_dict:
            state_dict.pop(name)
            print_log(f'{name}: dropped from the checkpoint, the ViT-Adapter '
                      'runs its ViT without class token.', logger='current')

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer depth of a parameter, for layer-wise lr decay.

        ViT parameters as in :meth:`MPVGViT.get_layer_depth`; every adapter
        parameter (:attr:`ADAPTER_PREFIXES`) gets the last depth, i.e. the
        base learning rate, like the heads.

        Returns:
            tuple[int, int]: The depth and the number of depths (L + 2).
        """
        num_depths = self.num_layers + 2
        name = param_name[len(prefix):]
        if param_name.startswith(prefix) and name.startswith(
                self.ADAPTER_PREFIXES):
            return num_depths - 1, num_depths
        return super().get_layer_depth(param_name, prefix)

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def forward_features(self, img: torch.Tensor):
        """The ViT token maps and the adapter's maps before they are fused.

        Args:
            img (Tensor): Images (B, C, H, W) of any size.

        Returns:
            tuple[list[Tensor], list[Tensor]]: ``vit_maps``: for each output
            level, the ViT token map (B, C, h, w) to add to it (with
            ``vit_feature_source='final'`` the same tensor four times: the
            token map after the final ``norm`` and Last-LN PE);
            ``adapter_maps``: c1..c4 (B, C, ceil(H / s), ceil(W / s)) at
            strides s = 4, 8, 16, 32.
        """
        B = img.shape[0]
        device = img.device
        c1, c2, c3, c4 = self.spm(img)
        c_shapes = [tuple(m.shape[-2:]) for m in (c2, c3, c4)]
        c = torch.cat([
            m.flatten(2).transpose(1, 2) + self.level_embed[i]
            for i, m in enumerate((c2, c3, c4))
        ], dim=1)

        x, hw = self.patch_embed(img)
        pe = self.pe(hw)  # every PE of this grid, computed once per batch
        if pe.input is not None:
            x = x + pe.input
        x = self.pos_drop(x)

        # ViT tokens query the 3 levels of c; c's tokens query the ViT grid
        c_strides = [(s, s) for s in self.LEVEL_STRIDES[1:]]
        inject_ref = reference_points([hw], [self.patch_size], c_shapes,
                                      c_strides, device)
        extract_ref = reference_points(c_shapes, c_strides, [hw],
                                       [self.patch_size], device)
        c_layout = level_layout(c_shapes, device)
        vit_layout = level_layout([hw], device)

        vit_maps = []
        for (start, end), interaction in zip(self.interaction_indexes,
                                             self.interactions):
            x = interaction.injector(x, c, inject_ref, *c_layout)
            for i in range(start, end + 1):
                x = self.blocks[i](x, pe.layers[i], hw)
            c = interaction.extract(c, x, extract_ref, *vit_layout, c_shapes)
            if self.vit_feature_source == 'interactions':
                vit_maps.append(x)

        x = self.norm(x)
        if pe.last is not None:
            x = x + pe.last  # MPVG: LN_last(x_L) + LN'_last(pos_k)
        if self.vit_feature_source == 'interactions':
            vit_maps[-1] = x
        else:
            vit_maps = [x]
        vit_maps = [
            t.transpose(1, 2).reshape(B, self.embed_dims, *hw)
            for t in vit_maps
        ]
        if self.vit_feature_source == 'final':
            vit_maps = vit_maps * 4  # the same map for every level

        c2, c3, c4 = (
            level.transpose(1, 2).reshape(B, self.embed_dims, h, w)
            for level, (h, w) in zip(
                c.split([h * w for h, w in c_shapes], dim=1), c_shapes))
        c1 = c1 + self.up(c2)[..., :c1.shape[-2], :c1.shape[-1]]
        return vit_maps, [c1, c2, c3, c4]

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args:
            img (Tensor): Images (B, C, H, W) of any size.

        Returns:
            tuple[Tensor]: Four maps (B, embed_dims, ceil(H / s),
            ceil(W / s)) at strides s = 4, 8, 16, 32.
        """
        vit_maps, adapter_maps = self.forward_features(img)
        outs = []
        for level, (feat, norm) in enumerate(zip(adapter_maps,
                                                 self.out_norms)):
            if self.add_vit_feature:
                feat = feat + self._resize_vit_map(
                    vit_maps[level], self.LEVEL_STRIDES[level],
                    feat.shape[-2:])
            outs.append(norm(feat))
        return tuple(outs)

    def _resize_vit_map(self, vit_map: torch.Tensor, stride: int,
                        size) -> torch.Tensor:
        """Bilinear resize of the ViT token map to a level's exact size.

        Resizes by the exact stride ratio (patch / stride) per axis, then
        crops to ``size``; downwards, the map is first edge-padded to whole
        output cells. Both keep cell centres where they are in the image.
        Non-integer ratios fall back to resizing to ``size``.
        """
        if tuple(vit_map.shape[-2:]) == tuple(size):
            return vit_map
        target, pad = [], []
        for n, p in zip(vit_map.shape[-2:], self.patch_size):
            s = stride
            if p % s == 0:  # upsampling by an integer factor
                target.append(n * (p // s))
                pad.append(0)
            elif s % p == 0:  # downsampling by an integer factor
                k = s // p
                pad.append(-n % k)
                target.append((n + pad[-1]) // k)
            else:
                return F.interpolate(vit_map, size=tuple(size),
                                     mode='bilinear', align_corners=False)
        if any(pad):
            vit_map = F.pad(vit_map, (0, pad[1], 0, pad[0]), mode='replicate')
        vit_map = F.interpolate(vit_map, size=tuple(target), mode='bilinear',
                                align_corners=False)
        return vit_map[..., :size[0], :size[1]]
