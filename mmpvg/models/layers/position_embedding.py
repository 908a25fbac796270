# Copyright (c) mmpvg contributors. All rights reserved.
"""The position-embedding path of MPVG and its baselines, for any ViT family.

Everything the paper varies about the position embedding (PE) lives here:
pos_0 (learnable, or a fixed sinusoidal table), the per-block PE LayerNorms
LN'_l, the hierarchical chain pos_l = LN'_l(pos_{l-1}), resizing pos_0 to
other token grids, and the Last-LN term LN'_last(pos_k) of MPVG.

A backbone family plugs in by building one
:class:`LayerwisePositionEmbedding` and calling it once per forward pass with
its token grid; the returned :class:`PositionEmbeddings` says what to add
where. Staged backbones (Swin) give the blocks of each stage and the stage
widths, and pass their own transitions (patch merging) at call time, so the
PE crosses a stage boundary through the very module the tokens go through,
without owning (or duplicating) its weights.
"""
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from mmpvg.utils.grid import pos_embed_grid

Grid = Tuple[int, int]
# A stage transition: (PE of shape (1, h * w, C), (h, w)) -> (PE', (h', w')).
Transition = Callable[[torch.Tensor, Grid], Tuple[torch.Tensor, Grid]]

POS_EMBED_TYPES = ('learnable', 'sinusoidal')


class PositionEmbeddings(NamedTuple):
    """The PEs of one forward pass, each of shape (1, num_tokens, C).

    Attributes:
        input (Tensor | None): Added to the tokens before block 0 (x + PE).
        layers (list[Tensor | None]): ``layers[l]`` is added to the attention
            input LN_l(x_l) of block ``l``; ``None`` where block ``l`` gets no
            PE. In a staged backbone it has block ``l``'s grid and width.
        last (Tensor | None): Added to every token after the Last LN
            (MPVG's LN'_last(pos_k)); ``None`` when unused.
    """
    input: Optional[torch.Tensor]
    layers: List[Optional[torch.Tensor]]
    last: Optional[torch.Tensor]


def resize_pos_embed(pos_embed: torch.Tensor,
                     src_grid: Sequence[int],
                     dst_grid: Sequence[int],
                     mode: str = 'bicubic',
                     num_extra_tokens: int = 0) -> torch.Tensor:
    """Resize a (1, extra + h * w, C) PE to another token grid.

    The extra (class-token) rows are kept as they are; the grid rows are
    interpolated as an image (``align_corners=False``), the convention of
    DeiT, timm and mmpretrain.
    """
    src_grid, dst_grid = tuple(src_grid), tuple(dst_grid)
    if src_grid == dst_grid:
        return pos_embed
    extra, grid = pos_embed[:, :num_extra_tokens], pos_embed[:,
                                                             num_extra_tokens:]
    C = grid.shape[-1]
    grid = grid.reshape(1, *src_grid, C).permute(0, 3, 1, 2)
    # bicubic interpolation needs float32 on some devices
    grid = F.interpolate(grid.float(), size=dst_grid, mode=mode,
                         align_corners=False)
    grid = grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)
    return torch.cat([extra, grid], dim=1)


def sinusoid_table(num_rows: int, dims: int) -> torch.Tensor:
    """The fixed 1-D sinusoidal table of "Attention Is All You Need".

    Row ``p``, column ``j``: ``sin`` (even ``j``) or ``cos`` (odd ``j``) of
    ``p / 10000 ** (2 * (j // 2) / dims)``, as T2T-ViT builds its PE.

    Returns:
        Tensor: Shape (1, num_rows, dims), float32.
    """
    position = torch.arange(num_rows, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dims) // 2).double() / dims
    angles = position / torch.pow(10000., exponent)[None]
    table = torch.empty_like(angles)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table[None].float()


def _as_stages(num_layers, embed_dims) -> Tuple[List[int], List[int]]:
    depths = ([int(num_layers)] if isinstance(num_layers, int) else
              [int(d) for d in num_layers])
    widths = ([int(embed_dims)] * len(depths) if isinstance(embed_dims, int)
              else [int(c) for c in embed_dims])
    if len(depths) != len(widths) or not depths or min(depths) < 1:
        raise ValueError(
            f'num_layers={num_layers!r} and embed_dims={embed_dims!r} must '
            'be ints, or sequences of equal length giving the blocks (>= 1) '
            'and the width of each stage.')
    return depths, widths


class LayerwisePositionEmbedding(BaseModule):
    """pos_0, the PE LayerNorms and the rules that connect them to blocks.

    The chain is indexed as in the paper: pos_0 is the raw PE and pos_k the
    k-th PE the chain produces. Block ``l`` receives pos_{l+1} when the chain
    starts at block 0 (LaPE) and pos_l when it starts at block 1 (PVG/MPVG).
    The PE LayerNorm of block ``l`` is :meth:`norm_of` ``(l)``; its weights
    are stored as ``norms.<l>`` so that state-dict keys name the block.

    In a staged backbone, the chain goes through stage ``s``'s transition
    (``transitions[s]`` of :meth:`forward`) where stage ``s + 1`` begins:
    pos <- LN'_l(T_s(pos)); the non-hierarchical chain uses pos_0 brought
    through the same transitions, and the Last-LN term brings pos_k to the
    last stage before LN'_last.

    Args:
        num_layers (int | Sequence[int]): Number of blocks L, or the blocks
            of each stage.
        embed_dims (int | Sequence[int]): Token width, or the width of each
            stage (pos_0 has the first, LN'_last the last).
        patch_resolution (tuple[int, int]): Token grid (h, w) that pos_0 is
            stored for.
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
        pos_embed_type (str): 'learnable' (trunc-normal init) or
            'sinusoidal' (the fixed 1-D table, a parameter that is not
            trained; rebuilt, not interpolated, for other grids).
        sinusoid_offset (int): For 'sinusoidal': table rows skipped before
            the first kept row. T2T-ViT's table has a class-token row first,
            so its GAP models (no class token) use rows 1..N: offset 1.
        init_std (float): Std of the truncated-normal init of a learnable
            pos_0.
        interpolate_mode (str): Mode used to resize a learnable pos_0.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 num_layers: Union[int, Sequence[int]],
                 embed_dims: Union[int, Sequence[int]],
                 patch_resolution: Sequence[int],
                 num_extra_tokens: int = 0,
                 pe_at_input: bool = True,
                 layerwise: bool = True,
                 first_block: bool = False,
                 hierarchical: bool = True,
                 last_ln_pe: Optional[int] = 0,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 pos_embed_type: str = 'learnable',
                 sinusoid_offset: int = 0,
                 init_std: float = 0.02,
                 interpolate_mode: str = 'bicubic',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.stage_depths, self.stage_dims = _as_stages(num_layers, embed_dims)
        self.num_layers = sum(self.stage_depths)
        self.stage_of_block = [
            s for s, depth in enumerate(self.stage_depths)
            for _ in range(depth)
        ]
        if pos_embed_type not in POS_EMBED_TYPES:
            raise ValueError(f'pos_embed_type={pos_embed_type!r} is not '
                             f'supported; choose from {POS_EMBED_TYPES}.')
        if len(self.stage_depths) > 1 and num_extra_tokens:
            raise ValueError('A staged PE cannot have class-token rows: the '
                             'stage transitions work on the token grid.')
        self.patch_resolution = tuple(patch_resolution)
        self.num_extra_tokens = num_extra_tokens
        self.pe_at_input = pe_at_input
        self.layerwise = layerwise
        self.first_block = first_block
        self.hierarchical = hierarchical
        self.last_ln_pe = last_ln_pe
        self.pos_embed_type = pos_embed_type
        self.sinusoid_offset = sinusoid_offset
        self.interpolate_mode = interpolate_mode
        if last_ln_pe is not None and not 0 <= last_ln_pe <= len(
                self.pe_blocks):
            raise ValueError(
                f'last_ln_pe={last_ln_pe!r} must be in [0, '
                f'{len(self.pe_blocks)}] (the chain has that many steps).')

        if pos_embed_type == 'learnable':
            self.pos_embed = nn.Parameter(
                torch.zeros(1, self._num_rows(self.patch_resolution),
                            self.stage_dims[0]))
            trunc_normal_(self.pos_embed, std=init_std)
        else:  # fixed, but a parameter: the paper counts it
            self.pos_embed = nn.Parameter(
                self._sinusoid(self.patch_resolution), requires_grad=False)

        self.norms = nn.ModuleDict({
            str(block): build_norm_layer(
                norm_cfg, self.stage_dims[self.stage_of_block[block]])[1]
            for block in self.pe_blocks
        })
        self.last_norm = (
            build_norm_layer(norm_cfg, self.stage_dims[-1])[1]
            if last_ln_pe is not None else None)
        self._register_load_state_dict_pre_hook(self._resize_on_load)
        self._cache: Optional[dict] = None  # see enable_inference_cache

    # ------------------------------------------------------------------ #
    # structure
    # ------------------------------------------------------------------ #
    @property
    def pe_blocks(self) -> List[int]:
        """Indices of the blocks that receive a layer-wise PE."""
        if not self.layerwise:
            return []
        return list(range(0 if self.first_block else 1, self.num_layers))

    @property
    def has_last_term(self) -> bool:
        """Whether a Last-LN term LN'_last(pos_k) is added after the Last LN."""
        return self.last_norm is not None

    def norm_of(self, block: int) -> Optional[nn.Module]:
        """The PE LayerNorm LN'_l of block ``block``, or None if it has
        none."""
        return self.norms[str(block)] if str(block) in self.norms else None

    def block_of(self, param_name: str) -> Union[int, str]:
        """Which part of the network a parameter of this module serves.

        Args:
            param_name (str): A name relative to this module, e.g.
                ``'norms.3.weight'``.

        Returns:
            int | str: The block index for a PE LayerNorm, ``'input'`` for
            pos_0, ``'last'`` for LN'_last.
        """
        head, _, rest = param_name.partition('.')
        if head == 'norms':
            return int(rest.partition('.')[0])
        if head == 'last_norm':
            return 'last'
        if head == 'pos_embed':
            return 'input'
        raise KeyError(f'{param_name!r} is not a parameter of the PE module.')

    def chain_step(self, pes: PositionEmbeddings, patch_resolution,
                   k: int) -> torch.Tensor:
        """pos_k as the chain of ``pes`` produced it: pos_0 on the grid for
        k = 0, else the PE of the k-th block with a layer-wise PE."""
        if k == 0:
            return self.resize(patch_resolution)
        if not 0 < k <= len(self.pe_blocks):
            raise ValueError(f'The chain has steps 0..{len(self.pe_blocks)}, '
                             f'got k={k}.')
        return pes.layers[self.pe_blocks[k - 1]]

    def remove_last_term(self):
        """Drop LN'_last (after folding it elsewhere, e.g. a head bias)."""
        self.last_norm = None
        self.last_ln_pe = None
        self.clear_cache()

    # ------------------------------------------------------------------ #
    # pos_0
    # ------------------------------------------------------------------ #
    def _num_rows(self, patch_resolution) -> int:
        return (self.num_extra_tokens + patch_resolution[0] *
                patch_resolution[1])

    def _sinusoid(self, patch_resolution) -> torch.Tensor:
        rows = self._num_rows(patch_resolution)
        table = sinusoid_table(rows + self.sinusoid_offset, self.stage_dims[0])
        return table[:, self.sinusoid_offset:]

    def resize(self, patch_resolution: Sequence[int]) -> torch.Tensor:
        """pos_0 on another token grid (class-token row kept)."""
        hw = tuple(patch_resolution)
        if hw == self.patch_resolution:
            return self.pos_embed
        if self.pos_embed_type == 'sinusoidal':
            return self._sinusoid(hw).to(self.pos_embed)
        return resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            hw,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)

    # ------------------------------------------------------------------ #
    # the cache
    # ------------------------------------------------------------------ #
    def enable_inference_cache(self, enabled: bool = True):
        """Compute the PEs once per token grid at inference.

        With the cache on, a forward pass in eval mode without autograd
        reuses the PEs of a grid it has seen, as long as no parameter (of
        this module or of the transitions passed) was replaced or changed in
        place since. It is emptied by ``train()``, ``to()`` / ``half()`` /
        ``cuda()`` and any other ``_apply``, and by loading a state dict.
        """
        self._cache = {} if enabled else None

    def clear_cache(self):
        """Forget the cached PEs (keeps the cache on if it was)."""
        if self._cache:
            self._cache.clear()

    def train(self, mode: bool = True):
        self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)

    @staticmethod
    def _version_key(modules) -> tuple:
        """Identifies the current values of the parameters of ``modules``."""
        return tuple((p.data_ptr(), p._version, p.dtype, p.device)
                     for m in modules for p in m.parameters())

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def forward(self,
                patch_resolution: Sequence[int],
                transitions: Sequence[Transition] = ()
                ) -> PositionEmbeddings:
        """Compute every PE a forward pass on this token grid needs.

        Args:
            patch_resolution (tuple[int, int]): The token grid (h, w) of the
                first stage.
            transitions (Sequence[callable]): For a staged backbone, one
                callable per stage boundary mapping ``(pe, (h, w))`` to the
                next stage's ``(pe, (h', w'))`` (e.g. the stage's patch
                merging). Modules among them are part of the cache key.

        Returns:
            PositionEmbeddings: Tensors of shape (1, num_tokens, C) that
            broadcast over the batch.
        """
        hw = tuple(patch_resolution)
        if len(transitions) != len(self.stage_depths) - 1:
            raise ValueError(
                f'{len(self.stage_depths)} stages need '
                f'{len(self.stage_depths) - 1} transitions, got '
                f'{len(transitions)}.')
        cached = (self._cache is not None and not self.training
                  and not torch.is_grad_enabled())
        if not cached:
            return self._compute(hw, transitions)
        modules = [self, *(t for t in transitions if isinstance(t, nn.Module))]
        version = self._version_key(modules)
        if (hw, version) not in self._cache:
            for key in [k for k in self._cache if k[1] != version]:
                del self._cache[key]  # computed from older parameter values
            self._cache[hw, version] = self._compute(hw, transitions)
        return self._cache[hw, version]

    def _compute(self, hw: Grid, transitions) -> PositionEmbeddings:
        pos_0 = self.resize(hw)
        layers: List[Optional[torch.Tensor]] = [None] * self.num_layers
        steps = [(pos_0, 0, hw)]  # steps[k]: pos_k, its stage and grid
        pos, base, grid = pos_0, pos_0, hw  # base: pos_0 at the current stage
        pe_blocks = set(self.pe_blocks)
        for block, stage in enumerate(self.stage_of_block):
            if block and stage != self.stage_of_block[block - 1]:
                # the tokens cross a stage boundary: so does the PE
                pos, new_grid = transitions[stage - 1](pos, grid)
                if not self.hierarchical:
                    base, _ = transitions[stage - 1](base, grid)
                grid = new_grid
            if block in pe_blocks:
                pos = self.norms[str(block)](pos if self.hierarchical else base)
                layers[block] = pos
                steps.append((pos, stage, grid))
        last = None
        if self.last_norm is not None:
            pos, stage, grid = steps[self.last_ln_pe]
            for transition in transitions[stage:]:
                pos, grid = transition(pos, grid)
            last = self.last_norm(pos)
        return PositionEmbeddings(
            input=pos_0 if self.pe_at_input else None,
            layers=layers,
            last=last)

    # ------------------------------------------------------------------ #
    # loading
    # ------------------------------------------------------------------ #
    def _resize_on_load(self, state_dict, prefix, *args, **kwargs):
        """Fit a checkpoint's pos_embed to this module's grid on load."""
        self.clear_cache()
        name = prefix + 'pos_embed'
        if name not in state_dict:
            return
        ckpt = state_dict[name]
        if ckpt.shape == self.pos_embed.shape:
            return
        if self.pos_embed_type == 'sinusoidal':
            print_log(
                f'{name}: the checkpoint holds a fixed sinusoidal table of '
                f'shape {tuple(ckpt.shape)}; using this model\'s table of '
                f'shape {tuple(self.pos_embed.shape)} instead.',
                logger='current')
            state_dict[name] = self.pos_embed.detach().clone()
            return
        if ckpt.ndim != 3 or ckpt.shape[-1] != self.pos_embed.shape[-1]:
            raise ValueError(
                f'Cannot load {name} of shape {tuple(ckpt.shape)} into a '
                f'position embedding of shape {tuple(self.pos_embed.shape)}: '
                'the embedding width differs (another arch?).')
        found = pos_embed_grid(ckpt.shape[1])
        if found is None:
            raise ValueError(
                f'{name} in the checkpoint has {ckpt.shape[1]} rows, which is '
                'neither a square token grid nor a square grid plus one '
                'class-token row; only square source grids can be resized.')
        ckpt_extra, side = found
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
