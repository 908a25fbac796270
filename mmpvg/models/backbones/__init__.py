from .mpvg_vit import PE_MODES, MPVGViT
from .vit_adapter import MPVGViTAdapter

__all__ = ['MPVGViT', 'MPVGViTAdapter', 'PE_MODES']
