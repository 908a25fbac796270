from .mpvg_vit import PE_MODES, MPVGViT

__all__ = ['MPVGViT', 'PE_MODES']
