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
        forward_tail(x, grid) -> y: the Last LN and the Last-LN PE term,
            per token.
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
        raise NotImplementedError

    def attention_norms(self) -> List[nn.Module]:
        raise NotImplementedError

    @property
    def last_ln(self) -> nn.Module:
        raise NotImplementedError

    def pooled_last_term(self, img_size=None) -> torch.Tensor:
        raise NotImplementedError
