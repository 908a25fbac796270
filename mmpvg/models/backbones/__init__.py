from .base import PEBackbone
from .mpvg_vit import MPVGViT, TokenGrid
from .vit_adapter import MPVGViTAdapter

__all__ = ['MPVGViT', 'MPVGViTAdapter', 'PEBackbone', 'TokenGrid']
