# Copyright (c) mmpvg contributors. All rights reserved.
"""The position-embedding path of MPVG and its baselines.

Everything the paper varies about the position embedding (PE) lives here:
the one learnable ``pos_embed`` (pos_0), the per-block PE LayerNorms LN'_l,
the hierarchical chain pos_{l} = LN'_l(pos_{l-1}), bicubic interpolation of
pos_0 to other token grids, and the Last-LN term LN'_last(pos_k) of MPVG.
Classification, detection and segmentation backbones all call
:meth:`LayerwisePositionEmbedding.forward`, which computes every PE a forward
pass needs once per token grid (never per sample).
"""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.utils import resize_pos_embed


class PositionEmbeddings(NamedTuple):
    """The PEs of one forward pass, all of shape (1, num_tokens, C).

    Attributes:
        input (Tensor | None): Added to the tokens before block 0 (x + PE).
        layers (list[Tensor | None]): ``layers[l]`` is added to the attention
            input LN_l(x_l) of block ``l``; ``None`` where block ``l`` gets no PE.
        last (Tensor | None): Added to every token after the Last LN
            (MPVG's LN'_last(pos_k)); ``None`` when unused.
    """
    input: Optional[torch.Tensor]
    layers: List[Optional[torch.Tensor]]
    last: Optional[torch.Tensor]


class LayerwisePositionEmbedding(BaseModule):
    """pos_0, the PE LayerNorms and the rules that connect them to the blocks.

    The chain is indexed as in the paper: pos_0 is the raw learnable PE, and
    pos_k is the k-th PE the chain produces. Block ``l`` receives pos_{l+1}
    when the chain starts at block 0 (LaPE) and pos_l when it starts at
    block 1 (PVG/MPVG). The PE LayerNorm owned by block ``l`` is
    ``norms[str(l)]`` so that state-dict keys name the block they serve.

    Args:
        num_layers (int): Number of transformer blocks L.
        embed_dims (int): Token width D.
        patch_resolution (tuple[int, int]): Token grid (h, w) that
            ``pos_embed`` is stored for.
        num_extra_tokens (int): 1 with a class token (its PE row is kept and
            normalised with the others), else 0.
        pe_at_input (bool): Add pos_0 to the tokens before block 0.
        layerwise (bool): Give blocks a PE at their attention input.
        first_block (bool): With ``layerwise``, block 0 gets a PE too
            (LaPE); otherwise the chain starts at block 1 (PVG/MPVG).
        hierarchical (bool): With ``layerwise``, pos_l = LN'_l(pos_{l-1});
            otherwise every block uses LN'_l(pos_0).
        last_ln_pe (int, optional): k such that LN'_last(pos_k) is added
            after the Last LN; ``None`` disables the term.
        norm_cfg (dict): Config of the PE LayerNorms.
        init_std (float): Std of the truncated-normal init of pos_0.
        interpolate_mode (str): Mode used to resize pos_0 to other grids.
    """

    def __init__(self,
                 num_layers: int,
                 embed_dims: int,
                 patch_resolution: Tuple[int, int],
                 num_extra_tokens: int = 0,
                 pe_at_input: bool = True,
                 layerwise: bool = True,
                 first_block: bool = False,
                 hierarchical: bool = True,
                 last_ln_pe: Optional[int] = 0,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_std: float = 0.02,
                 interpolate_mode: str = 'bicubic',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.num_layers = num_layers
        self.patch_resolution = tuple(patch_resolution)
        self.num_extra_tokens = num_extra_tokens
        self.pe_at_input = pe_at_input
        self.layerwise = layerwise
        self.first_block = first_block
        self.hierarchical = hierarchical
        self.last_ln_pe = last_ln_pe
        self.interpolate_mode = interpolate_mode

        num_tokens = patch_resolution[0] * patch_resolution[1]
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_tokens + num_extra_tokens, embed_dims))
        trunc_normal_(self.pos_embed, std=init_std)

        self.norms = nn.ModuleDict({
            str(block): build_norm_layer(norm_cfg, embed_dims)[1]
            for block in self.pe_blocks
        })
        self.last_norm = (
            build_norm_layer(norm_cfg, embed_dims)[1]
            if last_ln_pe is not None else None)
        self._register_load_state_dict_pre_hook(self._resize_on_load)
        self._cache: Optional[dict] = None  # see enable_inference_cache

    def enable_inference_cache(self, enabled: bool = True):
        """Compute the PEs once per token grid at inference.

        With the cache on, a forward pass in eval mode without autograd
        reuses the PEs of a grid it has seen. The cache is emptied whenever
        the module is put in train mode or loads a state dict; edit the
        parameters in place in eval mode only with the cache off.
        """
        self._cache = {} if enabled else None

    def train(self, mode: bool = True):
        if self._cache:
            self._cache.clear()
        return super().train(mode)

    @property
    def pe_blocks(self) -> List[int]:
        """Indices of the blocks that receive a layer-wise PE."""
        if not self.layerwise:
            return []
        return list(range(0 if self.first_block else 1, self.num_layers))

    def resize(self, patch_resolution: Sequence[int]) -> torch.Tensor:
        """pos_0 interpolated to another token grid (class-token row kept)."""
        return resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            tuple(patch_resolution),
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)

    def forward(self, patch_resolution: Sequence[int]) -> PositionEmbeddings:
        """Compute every PE a forward pass on this token grid needs.

        Args:
            patch_resolution (tuple[int, int]): The token grid (h, w).

        Returns:
            PositionEmbeddings: Tensors of shape (1, num_tokens, C) that
            broadcast over the batch.
        """
        hw = tuple(patch_resolution)
        cached = (self._cache is not None and not self.training
                  and not torch.is_grad_enabled())
        if cached and hw in self._cache:
            return self._cache[hw]
        pes = self._compute(hw)
        if cached:
            self._cache[hw] = pes
        return pes

    def _compute(self, patch_resolution) -> PositionEmbeddings:
        pos_0 = self.resize(patch_resolution)
        layers: List[Optional[torch.Tensor]] = [None] * self.num_layers
        steps = [pos_0]  # steps[k] is pos_k
        pos = pos_0
        for block in self.pe_blocks:
            # Hierarchical: normalise the previous PE; otherwise always pos_0.
            pos = self.norms[str(block)](pos if self.hierarchical else pos_0)
            layers[block] = pos
            steps.append(pos)
        last = None
        if self.last_norm is not None:
            last = self.last_norm(steps[self.last_ln_pe])
        return PositionEmbeddings(
            input=pos_0 if self.pe_at_input else None,
            layers=layers,
            last=last)

    def _resize_on_load(self, state_dict, prefix, *args, **kwargs):
        """Resize a checkpoint's pos_embed to this module's grid on load."""
        if self._cache:
            self._cache.clear()
        name = prefix + 'pos_embed'
        if name not in state_dict:
            return
        ckpt = state_dict[name]
        if ckpt.shape == self.pos_embed.shape:
            return
        if ckpt.ndim != 3 or ckpt.shape[-1] != self.pos_embed.shape[-1]:
            raise ValueError(
                f'Cannot load {name} of shape {tuple(ckpt.shape)} into a '
                f'position embedding of shape {tuple(self.pos_embed.shape)}: '
                'the embedding width differs (another arch?).')
        ckpt_extra = _num_extra_tokens(ckpt.shape[1])
        if ckpt_extra is None:
            raise ValueError(
                f'{name} in the checkpoint has {ckpt.shape[1]} rows, which is '
                'neither a square token grid nor a square grid plus one '
                'class-token row; only square source grids can be resized.')
        if ckpt_extra > self.num_extra_tokens:
            print_log(
                f'{name}: dropping the class-token row of the checkpoint, '
                'this model has no class token.',
                logger='current')
            ckpt = ckpt[:, ckpt_extra - self.num_extra_tokens:]
        elif ckpt_extra < self.num_extra_tokens:
            raise ValueError(
                f'{name} in the checkpoint has no class-token row, but this '
                'model uses a class token; a GAP checkpoint cannot initialise '
                "the class-token PE (use pe_mode 'gap', 'pvg' or 'mpvg').")
        side = math.isqrt(ckpt.shape[1] - self.num_extra_tokens)
        if (side, side) != self.patch_resolution:
            print_log(
                f'{name}: resizing from a {side}x{side} to a '
                f'{self.patch_resolution[0]}x{self.patch_resolution[1]} '
                f'token grid ({self.interpolate_mode}).',
                logger='current')
        state_dict[name] = resize_pos_embed(
            ckpt, (side, side), self.patch_resolution,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)


def _num_extra_tokens(rows: int) -> Optional[int]:
    """0 or 1 extra (class-token) rows in a PE of ``rows`` rows, or None."""
    for extra in (0, 1):
        side = math.isqrt(max(rows - extra, 0))
        if side > 0 and side * side == rows - extra:
            return extra
    return None
