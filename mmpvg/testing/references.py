# Copyright (c) mmpvg contributors. All rights reserved.
"""Reference models the checkpoint converters are checked against.

A conversion is checked by outputs, not only by key names: the source model
and the converted one run on the same images with random weights (every
LayerNorm randomised, so none is the identity) and must agree to ``TOL``.
The sources are timm's own ``VisionTransformer`` (for timm/DeiT
checkpoints) and :class:`LaPEReference`, written from the LaPE paper's
equations (as its official DeiT fork computes them) on timm's modules:
timm has no LaPE model.

Shared by ``tests/test_converters`` (the library) and
``tests/test_tools/test_model_converters.py`` (the command lines). Imported
by tests only, never by ``import mmpvg``.
"""
import functools
import hashlib

import pytest
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from timm.models.vision_transformer import VisionTransformer

import mmpvg  # noqa: F401  (registers MPVGViT, built by classifier())

__all__ = [
    'EMBED', 'DEPTH', 'HEADS', 'FFN', 'IMG', 'PATCH', 'CLASSES', 'ARCH', 'TOL',
    'randomise', 'timm_kwargs', 'timm_vit', 'LaPEReference', 'classifier',
    'images', 'digest'
]

# A tiny ViT: 32x32 images, 8x8 patches (a 4x4 grid), 3 blocks.
EMBED, DEPTH, HEADS, FFN, IMG, PATCH, CLASSES = 32, 3, 4, 64, 32, 8, 10
ARCH = dict(embed_dims=EMBED, num_layers=DEPTH, num_heads=HEADS,
            feedforward_channels=FFN)
TOL = dict(atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------- #
# models
# ---------------------------------------------------------------------- #
def randomise(model, seed):
    """Random weights everywhere; LayerNorm weights around 1, not 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            is_norm_weight = p.ndim == 1 and name.endswith('weight')
            p.copy_(noise * 0.3 + (1.0 if is_norm_weight else 0.0))
    return model.eval()


def timm_kwargs(**kwargs):
    cfg = dict(img_size=IMG, patch_size=PATCH, embed_dim=EMBED, depth=DEPTH,
               num_heads=HEADS, mlp_ratio=FFN / EMBED, num_classes=CLASSES,
               class_token=True, global_pool='token', qkv_bias=True,
               norm_layer=functools.partial(nn.LayerNorm, eps=1e-6))
    cfg.update(kwargs)
    return cfg


def timm_vit(seed=0, cls=VisionTransformer, **kwargs):
    return randomise(cls(**timm_kwargs(**kwargs)), seed)


class LaPEReference(VisionTransformer):
    """LaPE as its official DeiT fork computes it, on timm's modules.

    Each block owns ``pe_norm``; no PE is added at the input;
    ``pos = blocks[i].pe_norm(pos)`` and block ``i`` attends over
    ``norm1(x) + pos``; the class token feeds the head.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for blk in self.blocks:
            blk.pe_norm = nn.LayerNorm(self.embed_dim, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        pos = self.pos_embed
        for blk in self.blocks:
            pos = blk.pe_norm(pos)
            x = x + blk.attn(blk.norm1(x) + pos)
            x = x + blk.mlp(blk.norm2(x))
        return self.head(self.norm(x)[:, 0])


def classifier(pe_mode='cls', seed=None, **backbone):
    """The MPVGViT classifier a converted checkpoint loads into (random
    weights with ``seed``, else as initialised)."""
    backbone.setdefault('img_size', IMG)
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=ARCH, patch_size=PATCH,
                      pe_mode=pe_mode, **backbone),
        head=dict(type='LinearClsHead', num_classes=CLASSES,
                  in_channels=EMBED)))
    return randomise(model, seed) if seed is not None else model.eval()


@pytest.fixture(scope='module')
def images():
    """The images source and converted models are compared on."""
    return torch.randn(2, 3, IMG, IMG, generator=torch.Generator()
                       .manual_seed(123))


def digest(path):
    """sha256 of a file: shows that a refused save left it unchanged."""
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()
