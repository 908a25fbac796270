# Copyright (c) mmpvg contributors. All rights reserved.
"""ViT-Adapter around :class:`MPVGViT`, for detection and segmentation.

`Vision Transformer Adapter for Dense Predictions
<https://arxiv.org/abs/2205.08534>`_ (Chen et al., ICLR 2023) turns a plain
ViT into a four-level feature pyramid with a small convolutional branch that
talks to the ViT through deformable cross-attention (the modules are in
:mod:`mmpvg.models.layers.adapter_modules`). The ViT runs through
:class:`MPVGViT`'s own stem, blocks and tail, so every position-embedding
structure of MPVG and its baselines works unchanged: each block keeps its
own PE, computed once per forward for the image's token grid, and MPVG's
Last-LN term ``LN'_last(pos_0)`` is added to the ViT token map after the
final ``norm``, i.e. where a dense head sees it. The paper does not say how
the Last-LN PE reaches dense tasks; this is our choice.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule

from mmpvg.registry import register_model
from ..layers.adapter_modules import (InteractionBlock, SpatialPriorModule,
                                      init_adapter_weights)
from ..layers.deform_geometry import level_layout, reference_points
from .mpvg_vit import MPVGViT


@register_model()
class MPVGViTAdapter(BaseModule):
    """ViT-Adapter on :class:`MPVGViT`: a 4-level pyramid for dense tasks.

    A PyTorch implementation of the ViT-Adapter of `Vision Transformer
    Adapter for Dense Predictions <https://arxiv.org/abs/2205.08534>`_
    around the position-embedding structures of `MPVG
    <https://arxiv.org/abs/2502.02919>`_, for mmdet (e.g. Mask R-CNN + FPN)
    and mmseg (e.g. UperNet).

    The adapter *has* a ViT (``self.vit``, an :class:`MPVGViT` without class
    token) rather than being one: it runs the ViT only through its
    ``forward_stem`` / ``forward_blocks`` / ``forward_tail``, and is not
    accepted where a plain :class:`MPVGViT` is meant (e.g. the PE analysis,
    which would otherwise analyse the ViT without its injectors). A
    classification checkpoint's backbone loads unchanged with
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``:
    its ViT keys (``patch_embed.``, ``pe.``, ``blocks.``, ``norm.``,
    ``cls_token``) are read as ``vit.*`` (so are adapter checkpoints saved
    before the ViT moved under ``vit.``), pos_0 is resized to ``img_size``,
    and a class-token checkpoint ('cls', 'lape') loses its class token and
    class-token PE row (all logged). Every adapter parameter is under
    ``spm.``, ``level_embed``, ``interactions.``, ``up.`` or ``out_norms.``
    (:attr:`ADAPTER_PREFIXES`).

    Forward, on an image of any size (H, W):

    1. ``spm`` gives c1..c4 at strides 4/8/16/32 (``ceil(H / s)`` rows);
       c2..c4 plus ``level_embed`` are flattened into the sequence ``c``.
    2. The patch tokens get pos_0 at the input as the ``pe_mode`` says; all
       PEs of the token grid are computed once (``vit.forward_stem``).
    3. For each ``[start, end]`` of ``interaction_indexes``: the injector,
       blocks ``start..end`` (``vit.forward_blocks``: each with its own PE
       and window or global attention), the extractor(s).
    4. The ViT token map is ``vit.forward_tail``: ``norm(x)`` plus, for
       MPVG, the Last-LN PE term
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
        frozen_stages (int): Freeze the ViT's stem and first k blocks as
            :class:`MPVGViT` (mmpretrain's meaning: 0 and -1 freeze
            nothing); the adapter is never frozen. Defaults to -1.
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
    # top-level names of MPVGViT's state dict (``cls_token`` of a
    # class-token checkpoint is dropped by MPVGViT's own load hook)
    VIT_KEYS = ('patch_embed', 'cls_token', 'pe', 'blocks', 'norm')
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
        super().__init__(init_cfg)
        self.vit = MPVGViT(
            arch=arch, pe_mode=pe_mode, with_cls_token=False,
            pe_at_input=pe_at_input, layerwise_pe=layerwise_pe,
            pe_first_block=pe_first_block, hierarchical_pe=hierarchical_pe,
            last_ln_pe=last_ln_pe, img_size=img_size, patch_size=patch_size,
            in_channels=in_channels, out_type='raw', qkv_bias=qkv_bias,
            drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate, window_size=window_size,
            global_attn_indexes=global_attn_indexes, norm_cfg=norm_cfg,
            final_norm=final_norm, frozen_stages=frozen_stages,
            interpolate_mode=interpolate_mode)
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

        init_adapter_weights(self.spm, self.interactions, self.up,
                             self.out_norms)
        nn.init.normal_(self.level_embed)
        self._register_load_state_dict_pre_hook(self._vit_keys_on_load)

    @property
    def embed_dims(self) -> int:
        return self.vit.embed_dims

    @property
    def num_layers(self) -> int:
        return self.vit.num_layers

    @property
    def patch_size(self) -> Tuple[int, int]:
        return self.vit.patch_size

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

    def _vit_keys_on_load(self, state_dict, prefix, *args, **kwargs):
        """Read a classifier's (or an older adapter's) flat ViT keys as
        ``vit.*``."""
        moved = 0
        for key in list(state_dict):
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):]
            if name.split('.', 1)[0] in self.VIT_KEYS:
                state_dict[prefix + 'vit.' + name] = state_dict.pop(key)
                moved += 1
        if moved:
            print_log(f'{prefix or "the checkpoint"}: read {moved} ViT keys '
                      f'(patch_embed., pe., blocks., norm., cls_token) as '
                      f'{prefix}vit.*.', logger='current')

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer depth of a parameter, for layer-wise lr decay.

        ViT parameters as in :meth:`MPVGViT.get_layer_depth`; every adapter
        parameter (:attr:`ADAPTER_PREFIXES`), like the necks and heads, gets
        the last depth, i.e. the base learning rate.

        Returns:
            tuple[int, int]: The depth and the number of depths (L + 2).
        """
        return self.vit.get_layer_depth(param_name, prefix + 'vit.')

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

        x, grid = self.vit.forward_stem(img)
        hw = grid.hw

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
            x = self.vit.forward_blocks(x, grid, start, end + 1)
            c = interaction.extract(c, x, extract_ref, *vit_layout, c_shapes)
            if self.vit_feature_source == 'interactions':
                vit_maps.append(x)

        x = self.vit.forward_tail(x, grid)  # LN_last(x_L) [+ LN'_last(pos_k)]
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
