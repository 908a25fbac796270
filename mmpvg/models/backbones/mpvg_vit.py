# Copyright (c) mmpvg contributors. All rights reserved.
"""MPVGViT: one ViT backbone for MPVG and its position-embedding baselines.

The five structures of the paper differ only in where the position
embedding (PE) goes; :class:`LayerwisePositionEmbedding` computes those PEs
and ``MPVGViT.forward`` shows the few places they enter:

- ``cls``  (ViT/DeiT): x_0 = [cls; p] + pos_0, head on the class token.
- ``gap``:  x_0 = p + pos_0, head on GAP(LN_last(x_L)).
- ``lape``: x_0 = [cls; p], block l attends over LN_l(x_l) + pos_{l+1}.
- ``pvg``:  x_0 = p + pos_0, block 0 plain, block l >= 1 uses pos_l, GAP.
- ``mpvg``: PVG + LN'_last(pos_0) added to LN_last(x_L) before GAP.
"""
import copy
import math
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmengine.utils import to_2tuple

from mmpvg.registry import register_model
from ..layers import LayerwisePositionEmbedding, TransformerBlock

# What each ``pe_mode`` means, as values of the ablation switches.
PE_MODES = {
    'cls': dict(with_cls_token=True, pe_at_input=True, layerwise_pe=False,
                pe_first_block=False, hierarchical_pe=True, last_ln_pe=None),
    'gap': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=False,
                pe_first_block=False, hierarchical_pe=True, last_ln_pe=None),
    'lape': dict(with_cls_token=True, pe_at_input=False, layerwise_pe=True,
                 pe_first_block=True, hierarchical_pe=True, last_ln_pe=None),
    'pvg': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=True,
                pe_first_block=False, hierarchical_pe=True, last_ln_pe=None),
    'mpvg': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=True,
                 pe_first_block=False, hierarchical_pe=True, last_ln_pe=0),
}


class PatchEmbed(nn.Module):
    """Conv patch embedding; pads bottom/right to a multiple of the patch.

    Args:
        in_channels (int): Image channels.
        embed_dims (int): Token width.
        patch_size (tuple[int, int]): Patch (and stride) size.
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size):
        super().__init__()
        self.patch_size = to_2tuple(patch_size)
        self.proj = nn.Conv2d(
            in_channels, embed_dims, self.patch_size, stride=self.patch_size)

    def forward(self, x: torch.Tensor):
        ph, pw = self.patch_size
        pad_h, pad_w = -x.shape[-2] % ph, -x.shape[-1] % pw
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x)
        hw = (x.shape[-2], x.shape[-1])
        return x.flatten(2).transpose(1, 2), hw


@register_model()
class MPVGViT(BaseModule):
    """Vision Transformer with the position-embedding structures of MPVG.

    A PyTorch implementation of `Maximizing the Position Embedding for Vision
    Transformers with Global Average Pooling <https://arxiv.org/abs/2502.02919>`_
    (AAAI 2025), with ViT/DeiT, GAP, LaPE and PVG as ``pe_mode`` values.

    Args:
        arch (str | dict): 'deit-tiny', 'deit-small', 'deit-base' or
            'vit-lite-7' (CIFAR: patch 4, 32x32, post-attention norm), or a
            dict with ``embed_dims``, ``num_layers``, ``num_heads`` and
            ``feedforward_channels`` (optional: ``qkv_bias``,
            ``pos_embed_init_std``, ``norm_after_attn``, ``img_size``,
            ``patch_size``). Defaults to 'deit-tiny'.
        pe_mode (str): 'cls', 'gap', 'lape', 'pvg' or 'mpvg'.
            Defaults to 'mpvg'.
        with_cls_token (bool, optional): ``None`` follows ``pe_mode`` (True
            for 'cls' and 'lape'). ``False`` with 'cls' or 'lape' drops the
            class token for dense outputs (``out_type`` 'featmap' or 'raw'),
            as ViT-Adapter and mmseg do; GAP modes never take one.
        pe_at_input (bool, optional): Add pos_0 to the tokens before block 0
            (False for 'lape'). Ablation "no x+PE at the input".
        layerwise_pe (bool, optional): Deliver PEs to the blocks' attention
            inputs through per-block PE LayerNorms ('lape', 'pvg', 'mpvg').
            ``False`` with ``last_ln_pe=0`` is the paper's Fig. 5b.
        pe_first_block (bool, optional): With ``layerwise_pe``, block 0 gets a
            PE too (True for 'lape'). Ablation "PE to block 0".
        hierarchical_pe (bool, optional): With ``layerwise_pe``, chain the PE
            LayerNorms (pos_l = LN'_l(pos_{l-1})); False gives every block
            LN'_l(pos_0). Ablation "non-hierarchical".
        last_ln_pe (int | bool, optional): k such that LN'_last(pos_k) is
            added to every token after the Last LN; ``False`` disables it,
            ``True`` means 0. MPVG uses 0. Requires GAP (no class token).
        img_size (int | tuple, optional): Input size the PE is stored for;
            other sizes are interpolated. Defaults to the arch's (224 / 32).
        patch_size (int | tuple, optional): Defaults to the arch's (16 / 4).
        in_channels (int): Image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Blocks to output. Defaults to -1.
        out_type (str, optional): 'cls_token', 'avg_featmap' (mean over the
            tokens of LN_last(x_L) [+ Last-LN PE]: LN before pooling, unlike
            mmpretrain's), 'featmap' (B, C, h, w) or 'raw' (B, N, C).
            ``None``: 'cls_token' with a class token, else 'avg_featmap'.
        qkv_bias (bool, optional): Bias in qkv. Defaults to the arch's.
        drop_rate (float): Dropout after PE and in blocks. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linear over blocks.
        window_size (int): With ``window_size > 0``, every block not in
            ``global_attn_indexes`` attends within non-overlapping
            ``window_size`` x ``window_size`` windows of the token grid
            (ViTDet / ViT-Adapter; the grid is zero-padded to a multiple of
            the window, see :class:`TransformerBlock`). The PE is added to
            ``LN_l(x)`` before windowing. Needs no class token.
            Defaults to 0 (global attention everywhere).
        global_attn_indexes (Sequence[int]): Blocks that keep global
            attention when ``window_size > 0`` (ignored when it is 0).
            Defaults to ().
        norm_cfg (dict): Config of every LayerNorm.
            Defaults to ``dict(type='LN', eps=1e-6)``.
        final_norm (bool): Apply the Last LN after the last block.
            Defaults to True.
        frozen_stages (int): Freeze the stem (0), and blocks 1..k; -1 none.
        interpolate_mode (str): PE interpolation mode. Defaults to 'bicubic'.
        init_cfg (dict, optional): Initialization config, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """
    arch_zoo = {
        **dict.fromkeys(['deit-t', 'deit-tiny'], dict(
            embed_dims=192, num_layers=12, num_heads=3,
            feedforward_channels=768)),
        **dict.fromkeys(['deit-s', 'deit-small'], dict(
            embed_dims=384, num_layers=12, num_heads=6,
            feedforward_channels=1536)),
        **dict.fromkeys(['deit-b', 'deit-base'], dict(
            embed_dims=768, num_layers=12, num_heads=12,
            feedforward_channels=3072)),
        # Compact Transformers' ViT-Lite-7/4 for 32x32 CIFAR images.
        'vit-lite-7': dict(
            embed_dims=256, num_layers=7, num_heads=4,
            feedforward_channels=512, qkv_bias=False, pos_embed_init_std=0.2,
            norm_after_attn=True, img_size=32, patch_size=4),
    }
    ARCH_KEYS = {'embed_dims', 'num_layers', 'num_heads',
                 'feedforward_channels'}
    ARCH_DEFAULTS = dict(qkv_bias=True, pos_embed_init_std=0.02,
                         norm_after_attn=False, img_size=224, patch_size=16)
    OUT_TYPES = ('cls_token', 'avg_featmap', 'featmap', 'raw')

    def __init__(self,
                 arch: Union[str, dict] = 'deit-tiny',
                 pe_mode: str = 'mpvg',
                 with_cls_token: Optional[bool] = None,
                 pe_at_input: Optional[bool] = None,
                 layerwise_pe: Optional[bool] = None,
                 pe_first_block: Optional[bool] = None,
                 hierarchical_pe: Optional[bool] = None,
                 last_ln_pe: Optional[Union[int, bool]] = None,
                 img_size=None,
                 patch_size=None,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 out_type: Optional[str] = None,
                 qkv_bias: Optional[bool] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 window_size: int = 0,
                 global_attn_indexes: Sequence[int] = (),
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = True,
                 frozen_stages: int = -1,
                 interpolate_mode: str = 'bicubic',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.arch_settings = self._parse_arch(arch)
        s = self.arch_settings
        self.embed_dims = s['embed_dims']
        self.num_layers = s['num_layers']
        self.img_size = to_2tuple(img_size or s['img_size'])
        self.patch_size = to_2tuple(patch_size or s['patch_size'])
        self.patch_resolution = tuple(
            math.ceil(i / p) for i, p in zip(self.img_size, self.patch_size))

        self.pe_mode = pe_mode
        switches = self._resolve_pe_switches(
            pe_mode, out_type, with_cls_token=with_cls_token,
            pe_at_input=pe_at_input,
            layerwise_pe=layerwise_pe, pe_first_block=pe_first_block,
            hierarchical_pe=hierarchical_pe, last_ln_pe=last_ln_pe)
        self.with_cls_token = switches['with_cls_token']
        self.num_extra_tokens = int(self.with_cls_token)
        if switches['last_ln_pe'] is not None and not final_norm:
            raise ValueError('last_ln_pe adds LN\'_last(pos_k) after the Last '
                             'LN, so it needs final_norm=True.')

        self.out_type = out_type or (
            'cls_token' if self.with_cls_token else 'avg_featmap')
        if self.out_type not in self.OUT_TYPES:
            raise ValueError(f'out_type={out_type!r} is not supported; '
                             f'choose from {self.OUT_TYPES}.')
        if self.out_type == 'cls_token' and not self.with_cls_token:
            raise ValueError(
                f"out_type='cls_token' needs a class token, but "
                f"pe_mode={pe_mode!r} has none; use 'avg_featmap', "
                "'featmap' or 'raw'.")

        self.out_indices = self._parse_out_indices(out_indices)
        self.window_size = window_size
        self.global_attn_indexes = self._parse_window_attention(
            window_size, global_attn_indexes)
        if not -1 <= frozen_stages <= self.num_layers:
            raise ValueError(f'frozen_stages={frozen_stages} must be in '
                             f'[-1, {self.num_layers}].')
        self.frozen_stages = frozen_stages
        self.final_norm = final_norm

        self.patch_embed = PatchEmbed(in_channels, self.embed_dims,
                                      self.patch_size)
        self.cls_token = (
            nn.Parameter(torch.zeros(1, 1, self.embed_dims))
            if self.with_cls_token else None)
        self.pe = LayerwisePositionEmbedding(
            num_layers=self.num_layers,
            embed_dims=self.embed_dims,
            patch_resolution=self.patch_resolution,
            num_extra_tokens=self.num_extra_tokens,
            pe_at_input=switches['pe_at_input'],
            layerwise=switches['layerwise_pe'],
            first_block=switches['pe_first_block'],
            hierarchical=switches['hierarchical_pe'],
            last_ln_pe=switches['last_ln_pe'],
            norm_cfg=norm_cfg,
            init_std=s['pos_embed_init_std'],
            interpolate_mode=interpolate_mode)
        self.pos_drop = nn.Dropout(drop_rate)

        qkv_bias = s['qkv_bias'] if qkv_bias is None else qkv_bias
        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList([
            TransformerBlock(
                self.embed_dims, s['num_heads'], s['feedforward_channels'],
                qkv_bias=qkv_bias, drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate, drop_path_rate=dpr[i],
                norm_cfg=norm_cfg, norm_after_attn=s['norm_after_attn'],
                window_size=(0 if i in self.global_attn_indexes
                             else window_size))
            for i in range(self.num_layers)
        ])
        self.norm = (
            build_norm_layer(norm_cfg, self.embed_dims)[1]
            if final_norm else nn.Identity())

        self._init_parameters()
        self._freeze_stages()

    # ------------------------------------------------------------------ #
    # argument parsing
    # ------------------------------------------------------------------ #
    def _parse_arch(self, arch) -> dict:
        if isinstance(arch, str):
            key = arch.lower()
            if key not in self.arch_zoo:
                raise ValueError(f'arch={arch!r} is not a preset; choose from '
                                 f'{sorted(self.arch_zoo)} or pass a dict '
                                 f'with keys {sorted(self.ARCH_KEYS)}.')
            arch = self.arch_zoo[key]
        elif not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch)}.')
        missing = self.ARCH_KEYS - set(arch)
        unknown = set(arch) - self.ARCH_KEYS - set(self.ARCH_DEFAULTS)
        if missing or unknown:
            raise ValueError(
                f'Custom arch {dict(arch)} is missing {sorted(missing)} / has '
                f'unknown keys {sorted(unknown)}; required: '
                f'{sorted(self.ARCH_KEYS)}, optional: '
                f'{sorted(self.ARCH_DEFAULTS)}.')
        return {**self.ARCH_DEFAULTS, **arch}

    def _resolve_pe_switches(self, pe_mode: str, out_type, **given) -> dict:
        """Fill unset switches from ``pe_mode`` and reject impossible mixes."""
        if pe_mode not in PE_MODES:
            raise ValueError(f'pe_mode={pe_mode!r} is not supported; choose '
                             f'from {list(PE_MODES)}.')
        sw = copy.deepcopy(PE_MODES[pe_mode])
        sw.update({k: v for k, v in given.items() if v is not None})

        if sw['with_cls_token'] != PE_MODES[pe_mode]['with_cls_token']:
            if PE_MODES[pe_mode]['with_cls_token']:
                if out_type not in ('featmap', 'raw'):
                    raise ValueError(
                        f'pe_mode={pe_mode!r} is a class-token model; '
                        'with_cls_token=False is only for dense outputs '
                        "(out_type 'featmap' or 'raw'). For a GAP classifier "
                        "use pe_mode 'gap', 'pvg' or 'mpvg' (a LaPE-style "
                        "chain without class token: pe_mode='pvg', "
                        'pe_first_block=True, pe_at_input=False).')
            else:
                raise ValueError(
                    f'pe_mode={pe_mode!r} pools tokens by GAP and cannot have '
                    'a class token (the paper: MPVG is incompatible with a '
                    "class token); use pe_mode 'cls' or 'lape' for "
                    'class-token models.')
        if not sw['layerwise_pe']:
            for name in ('pe_first_block', 'hierarchical_pe'):
                if given[name] is not None:
                    raise ValueError(
                        f'{name} only applies to the layer-wise PE path, '
                        f'which pe_mode={pe_mode!r} with '
                        f'layerwise_pe={sw["layerwise_pe"]} does not have.')

        last = sw['last_ln_pe']
        if isinstance(last, bool):
            last = 0 if last else None
        if last is not None:
            if sw['with_cls_token']:
                raise ValueError(
                    f'last_ln_pe needs GAP, but pe_mode={pe_mode!r} uses a '
                    'class token (the paper: MPVG is incompatible with a '
                    "class token); use pe_mode 'gap', 'pvg' or 'mpvg'.")
            num_steps = 0
            if sw['layerwise_pe']:
                num_steps = self.num_layers - (0 if sw['pe_first_block'] else 1)
            if not isinstance(last, int) or not 0 <= last <= num_steps:
                raise ValueError(
                    f'last_ln_pe={last!r} must be an int k in [0, {num_steps}]'
                    ' (pos_0 is the raw PE, pos_k the k-th PE of the chain) '
                    'or False.')
        sw['last_ln_pe'] = last
        return sw

    def _parse_out_indices(self, out_indices):
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        parsed = []
        for index in out_indices:
            if not -self.num_layers <= index < self.num_layers:
                raise ValueError(
                    f'out_indices entry {index} is out of range for '
                    f'{self.num_layers} blocks.')
            parsed.append(index % self.num_layers)
        return parsed

    def _parse_window_attention(self, window_size, global_attn_indexes):
        if not isinstance(window_size, int) or window_size < 0:
            raise ValueError(
                f'window_size must be an int >= 0 (0: global attention), '
                f'got {window_size!r}.')
        if window_size == 0:
            return []  # global attention everywhere; the indexes are unused
        parsed = []
        for index in global_attn_indexes:
            if not -self.num_layers <= index < self.num_layers:
                raise ValueError(
                    f'global_attn_indexes entry {index} is out of range for '
                    f'{self.num_layers} blocks.')
            parsed.append(index % self.num_layers)
        if self.with_cls_token:
            raise ValueError(
                f'window_size={window_size} needs a model without class '
                'token (windows tile the token grid); pe_mode='
                f'{self.pe_mode!r} has one. For dense outputs pass '
                "with_cls_token=False (out_type 'featmap' or 'raw').")
        return sorted(set(parsed))

    # ------------------------------------------------------------------ #
    # init / freezing
    # ------------------------------------------------------------------ #
    def _init_parameters(self):
        """DeiT/LaPE init: trunc-normal(0.02) Linear with zero bias, LN 1/0.

        pos_0 was initialised by the PE module (std 0.02, 0.2 for ViT-Lite).
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)

    def _frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        frozen = [self.patch_embed, self.pos_drop]
        for i in range(self.frozen_stages):
            frozen.append(self.blocks[i])
            if str(i) in self.pe.norms:
                frozen.append(self.pe.norms[str(i)])
        if self.frozen_stages == self.num_layers:
            frozen.append(self.norm)
            if self.pe.last_norm is not None:
                frozen.append(self.pe.last_norm)
        return frozen

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        self.pe.pos_embed.requires_grad = False
        if self.cls_token is not None:
            self.cls_token.requires_grad = False
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        """Set train/eval mode; frozen stages stay in eval mode."""
        super().train(mode)
        if mode:
            for m in self._frozen_modules():
                m.eval()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer depth of a parameter, for layer-wise lr decay.

        The stem (patch embedding, class token, pos_0) is depth 0, block
        ``i`` and its PE LayerNorm are depth ``i + 1``, the Last LN, the
        Last-LN PE norm and anything outside the backbone are the last depth.

        Returns:
            tuple[int, int]: The depth and the number of depths (L + 2).
        """
        num_depths = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_depths - 1, num_depths
        name = param_name[len(prefix):]
        if name in ('cls_token', 'pe.pos_embed') or name.startswith(
                'patch_embed'):
            return 0, num_depths
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1, num_depths
        if name.startswith('pe.norms.'):
            return int(name.split('.')[2]) + 1, num_depths
        return num_depths - 1, num_depths

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def forward(self, x: torch.Tensor):
        """Args:
            x (Tensor): Images of shape (B, C, H, W); any H, W (padded to
                a multiple of the patch size, PE interpolated).

        Returns:
            tuple[Tensor]: One output per entry of ``out_indices``.
        """
        x, hw = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        pe = self.pe(hw)  # every PE of this grid, computed once per batch
        if pe.input is not None:
            x = x + pe.input
        x = self.pos_drop(x)

        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x, pe.layers[i], hw)
            if i == self.num_layers - 1 and self.final_norm:
                x = self.norm(x)
                if pe.last is not None:
                    x = x + pe.last  # MPVG: y = LN_last(x_L) + LN'_last(pos_k)
            if i in self.out_indices:
                outs.append(self._format_output(x, hw))
        return tuple(outs)

    def _format_output(self, x: torch.Tensor, hw):
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patch_tokens = x[:, self.num_extra_tokens:]
        if self.out_type == 'avg_featmap':
            return patch_tokens.mean(dim=1)
        return patch_tokens.reshape(x.shape[0], *hw, -1).permute(0, 3, 1, 2)
