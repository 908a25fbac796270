# Copyright (c) mmpvg contributors. All rights reserved.
"""CeiT's layer-wise class-token attention (LCA).

CeiT (Yuan et al., ICCV 2021) collects one token per block (the class token
of every layer) and runs one more transformer block over these L tokens in
which only the last one is the query: the output is the last layer's token
refined by attending over all layers.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import DropPath

from .transformer import Mlp


class LayerClassAttention(nn.Module):
    """One pre-norm block over per-layer tokens, the last token the query.

    With ``t = T + E`` (T: the L per-layer tokens, E: a layer embedding),
    ``z = t_L + MSA_q(LN_1(t)_L ; LN_1(t))`` (query from the last row, keys
    and values from all rows) and ``out = z + MLP(LN_2(z))``.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of attention heads.
        num_tokens (int): Number of per-layer tokens L (the layer embedding
            has one row per layer).
        feedforward_channels (int): Hidden width of the MLP.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        layer_embed (bool): Add a learnable layer embedding E (one row per
            layer, initialised to zero) to the tokens. Defaults to True.
        drop_rate (float): Dropout after the projections. Defaults to 0.
        attn_drop_rate (float): Dropout on the attention weights.
        drop_path_rate (float): Stochastic depth of the block.
        norm_cfg (dict): Config of the LayerNorms.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 num_tokens: int,
                 feedforward_channels: int,
                 qkv_bias: bool = True,
                 layer_embed: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6)):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by num_heads ({num_heads}).')
        self.num_heads = num_heads
        self.num_tokens = num_tokens
        self.layer_embed = (
            nn.Parameter(torch.zeros(1, num_tokens, embed_dims))
            if layer_embed else None)
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = attn_drop_rate
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(drop_rate)
        self.drop_path = (
            DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity())
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = Mlp(embed_dims, feedforward_channels, drop_rate)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Args:
            tokens (Tensor): (B, L, C), the token of every layer in order.

        Returns:
            Tensor: (B, 1, C), the refined last-layer token.
        """
        B, L, C = tokens.shape
        if L != self.num_tokens:
            raise ValueError(f'LCA was built for {self.num_tokens} layer '
                             f'tokens, got {L}.')
        t = tokens if self.layer_embed is None else tokens + self.layer_embed
        qkv = self.qkv(self.norm1(t)).reshape(B, L, 3, self.num_heads,
                                              C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(
            q[:, :, -1:], k, v,
            dropout_p=self.attn_drop if self.training else 0.)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, 1, C)))
        z = t[:, -1:] + self.drop_path(out)
        return z + self.drop_path(self.mlp(self.norm2(z)))
