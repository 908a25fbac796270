# Copyright (c) mmpvg contributors. All rights reserved.
"""The contract every backbone family of mmpvg fulfils.

A family (the plain ViT, T2T-ViT, Swin, CeiT) builds one
:class:`~mmpvg.models.layers.LayerwisePositionEmbedding` and runs its forward
pass through three methods; the PE analysis, the deploy fold and the tests
use only what this contract names, so a new family works with them without
any change there. Wrappers that *contain* a backbone (the ViT-Adapter) do not
fulfil it: they are not the network the analysis would describe.
"""
from typing import Any, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from mmpvg.utils.checks import check_indices, check_positive_int
from ..layers import LayerwisePositionEmbedding


class PEBackbone:
    """Mixin that marks a backbone family and documents its contract.

    Attributes a family sets:
        pe_mode (str): The structure ('cls', 'gap', 'lape', 'pvg', 'mpvg').
        pe (LayerwisePositionEmbedding): The whole PE path.
        num_layers (int): Number of blocks L (over all stages).
        with_cls_token (bool): The blocks see a class token.
        num_extra_tokens (int): Rows before the patch tokens (0 or 1).
        final_norm (bool): There is a Last LN (:attr:`last_ln`).

    Methods a family implements:
        forward_stem(img) -> (x, grid): tokens entering block 0 (pos_0
            added as the mode says) and a grid object with at least ``hw``,
            ``pe`` (the PositionEmbeddings of the batch), ``num_extra_tokens``
            and ``stage_hw`` (the token grid of each stage).
        forward_blocks(x, grid, start=0, stop=None) -> x: blocks
            ``start .. stop - 1``, each with its layer-wise PE.
        forward_tail(x, grid) -> y: the Last LN and the Last-LN PE term
            (implemented here for a Last LN over the tokens).
        attention_norms() -> list of modules: LN_l of every block, whose
            output is the attention input the layer-wise PE is added to.
        last_ln (property): the Last LN module.
        pooled_last_term(img_size=None) -> (C,) tensor: what MPVG's Last-LN
            PE term adds to the pooled output at that input size, a
            constant (the deploy fold moves it into the head bias); a
            ValueError where the output is not pooled or there is no term.
    """

    pe_mode: str
    num_layers: int
    with_cls_token: bool
    num_extra_tokens: int
    final_norm: bool

    def forward_stem(self, img: torch.Tensor) -> Tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def forward_blocks(self,
                       x: torch.Tensor,
                       grid: Any,
                       start: int = 0,
                       stop: Optional[int] = None) -> torch.Tensor:
        raise NotImplementedError

    def forward_tail(self, x: torch.Tensor, grid: Any) -> torch.Tensor:
        """The Last LN and, for MPVG, the Last-LN PE term, per token:
        y = LN_last(x_L) [+ LN'_last(pos_k)]. A family whose Last LN does not
        see the tokens (CeiT's follows its class attention) overrides it."""
        x = self.last_ln(x)
        if grid.pe.last is not None:
            x = x + grid.pe.last
        return x

    def attention_norms(self) -> List[nn.Module]:
        raise NotImplementedError

    @property
    def last_ln(self) -> nn.Module:
        raise NotImplementedError

    def pooled_last_term(self, img_size=None) -> torch.Tensor:
        raise NotImplementedError

    def _freeze(self, modules: List[nn.Module]) -> None:
        """pos_0 and ``modules`` stop learning: no gradients, eval mode
        (what ``frozen_stages`` covers is the family's to say)."""
        self.pe.pos_embed.requires_grad = False
        for m in modules:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False


class PlainViTBase(BaseModule, PEBackbone):
    """What every single-stage ViT family shares (the plain ViT, T2T-ViT,
    CeiT): a stem, an optional class token, pos_0 through the PE module, a
    list of ``blocks`` whose ``norm1`` is LN_l, a Last LN ``norm``; block
    indices, init, freezing, layer depths and loading a class-token
    checkpoint into a model without one.

    A subclass builds ``self.<STEM>`` (a module with ``token_grid``),
    ``cls_token`` (a parameter or None), ``pe``, ``pos_drop``, ``blocks``
    and ``norm``, sets ``num_layers``, ``num_extra_tokens`` and
    ``frozen_stages``, and calls :meth:`_init_parameters`,
    :meth:`_freeze_stages` and :meth:`_register_cls_token_hook` at the end
    of its ``__init__``.
    """
    STEM = 'patch_embed'  # the attribute holding the stem (depth 0)
    # a subclass sets arch_zoo (presets), ARCH_KEYS (required keys of a
    # custom arch) and ARCH_DEFAULTS (optional keys and their defaults)
    arch_zoo: dict = {}
    ARCH_KEYS: set = set()
    ARCH_DEFAULTS: dict = {}

    # -- arguments --------------------------------------------------------
    def _arch_dict(self, arch) -> dict:
        """A preset's settings or a checked custom arch dict."""
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
        for key in sorted(self.ARCH_KEYS):
            check_positive_int(f'arch {key}', arch[key])
        return dict(arch)

    def _parse_arch(self, arch) -> dict:
        """The arch's settings with the defaults filled in."""
        return {**self.ARCH_DEFAULTS, **self._arch_dict(arch)}

    def _parse_indices(self, indices, name: str = 'out_indices') -> List[int]:
        """Block indices (an int or a sequence; negative from the end)."""
        check_indices(name, indices, allow_empty=name != 'out_indices')
        if isinstance(indices, int):
            indices = [indices]
        parsed = []
        for index in indices:
            if not -self.num_layers <= index < self.num_layers:
                raise ValueError(
                    f'{name} entry {index} is out of range for '
                    f'{self.num_layers} blocks.')
            parsed.append(index % self.num_layers)
        return parsed

    def _set_frozen_stages(self, frozen_stages: int):
        if not -1 <= frozen_stages <= self.num_layers:
            raise ValueError(f'frozen_stages={frozen_stages} must be in '
                             f'[-1, {self.num_layers}].')
        self.frozen_stages = frozen_stages

    def _build_pe_path(self, switches: dict, norm_cfg: dict, drop_rate: float,
                       **pe_kwargs):
        """The class token (if the mode has one), the PE module built from
        the resolved switches, and the dropout after pos_0."""
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
            **pe_kwargs)
        self.pos_drop = nn.Dropout(drop_rate)

    def token_grid(self, img_size) -> Tuple[int, int]:
        """The token grid (h, w) of an input size S or (H, W), as the stem
        gives it."""
        return getattr(self, self.STEM).token_grid(img_size)

    # -- init, loading ----------------------------------------------------
    def _init_parameters(self):
        """DeiT/LaPE init: trunc-normal(0.02) Linear with zero bias, LN 1/0,
        class token trunc-normal(0.02); pos_0 is initialised by the PE
        module, convolutions keep PyTorch's init."""
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

    def _register_cls_token_hook(self):
        self._register_load_state_dict_pre_hook(self._drop_cls_token_on_load)

    def _drop_cls_token_on_load(self, state_dict, prefix, *args, **kwargs):
        """A class-token checkpoint's ``cls_token`` has no place in a model
        without one; its PE row is dropped by the PE module."""
        name = prefix + 'cls_token'
        if self.cls_token is None and name in state_dict:
            state_dict.pop(name)
            print_log(f'{name}: dropped from the checkpoint, this model runs '
                      'without class token.', logger='current')

    # -- freezing, layer depth ---------------------------------------------
    def _tail_modules(self) -> List[nn.Module]:
        """What follows the blocks (frozen with the last block)."""
        return [self.norm]

    def _frozen_modules(self) -> List[nn.Module]:
        """As mmpretrain's VisionTransformer: ``frozen_stages <= 0``
        freezes nothing, ``k > 0`` the stem and blocks 0..k-1 (with their PE
        LayerNorms), ``k == L`` also the Last LN (and Last-LN PE norm)."""
        if self.frozen_stages <= 0:
            return []
        frozen = [getattr(self, self.STEM), self.pos_drop]
        for i in range(self.frozen_stages):
            frozen.append(self.blocks[i])
            if self.pe.norm_of(i) is not None:
                frozen.append(self.pe.norm_of(i))
        if self.frozen_stages == self.num_layers:
            frozen += self._tail_modules()
            if self.pe.has_last_term:
                frozen.append(self.pe.last_norm)
        return frozen

    def _freeze_stages(self):
        if self.frozen_stages <= 0:  # 0 freezes nothing, as in mmpretrain
            return
        if self.cls_token is not None:
            self.cls_token.requires_grad = False
        self._freeze(self._frozen_modules())

    def train(self, mode: bool = True):
        """Set train/eval mode; frozen stages (their BN too) stay in eval."""
        super().train(mode)
        if mode:
            for m in self._frozen_modules():
                m.eval()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer depth of a parameter, for layer-wise lr decay.

        The stem, the class token and pos_0 are depth 0, block ``i`` and its
        PE LayerNorm depth ``i + 1``; what follows the blocks (the Last LN,
        the Last-LN PE norm, CeiT's LCA) and anything outside the backbone
        the last depth.

        Returns:
            tuple[int, int]: The depth and the number of depths (L + 2).
        """
        num_depths = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_depths - 1, num_depths
        name = param_name[len(prefix):]
        head = name.split('.', 1)[0]
        if head in ('cls_token', self.STEM):
            return 0, num_depths
        if head == 'blocks':
            return int(name.split('.')[1]) + 1, num_depths
        if head == 'pe':
            block = self.pe.block_of(name[len('pe.'):])
            if block == 'input':
                return 0, num_depths
            if isinstance(block, int):
                return block + 1, num_depths
        return num_depths - 1, num_depths

    # -- forward pieces ------------------------------------------------------
    def _embed(self, x: torch.Tensor, hw) -> Tuple[torch.Tensor, Any]:
        """The stem's tokens with the class token and pos_0 at the input
        (as the mode says), and every PE of the grid (once per batch)."""
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        pe = self.pe(hw)
        if pe.input is not None:
            x = x + pe.input
        return self.pos_drop(x), pe

    def attention_norms(self) -> List[nn.Module]:
        """LN_l of every block (the PE is added to its output)."""
        return [block.norm1 for block in self.blocks]

    @property
    def last_ln(self) -> nn.Module:
        return self.norm
