# Copyright (c) mmpvg contributors. All rights reserved.
"""Convert checkpoints between timm/DeiT, LaPE and MPVGViT.

One job per module; ``tools/model_converters/*.py`` are thin command lines
around them:

- :mod:`.vit_keys`: key mappings timm/DeiT <-> MPVGViT 'cls' and
  LaPE -> MPVGViT 'lape', and the checks that refuse other models.
- :mod:`.mmpretrain_keys`: mmpretrain's and mmseg's VisionTransformer ->
  MPVGViT 'cls' / 'gap'.
- :mod:`.backbone`: classifier -> detection/segmentation backbone (keys
  moved to another prefix, PE resized to another token grid).
- :mod:`.arch`: what a state dict says about the MPVGViT that loads it,
  printed as a config.
- :mod:`.io`: finding, loading and saving checkpoint files safely.
- :mod:`.cli`: what the command lines print, and their shared entry point.
"""
from .arch import (arch_preset, backbone_cfg, format_backbone_cfg,
                   infer_vit_arch, not_in_weights)
from .backbone import convert_classifier_to_backbone
from .cli import (converter_parser, print_classifier_cfg, print_conversion,
                  run_cli)
from .io import (check_output_path, load_checkpoint, save_checkpoint,
                 unwrap_state_dict)
from .mmpretrain_keys import (convert_mmpretrain_to_mpvg,
                              inspect_mmpretrain_vit, is_mmpretrain_vit,
                              is_mmseg_vit)
from .vit_keys import (convert_lape_to_mpvg, convert_mpvg_to_timm,
                       convert_timm_to_mpvg)

__all__ = [
    'converter_parser',
    'unwrap_state_dict', 'convert_timm_to_mpvg', 'convert_mpvg_to_timm',
    'convert_lape_to_mpvg', 'convert_classifier_to_backbone',
    'convert_mmpretrain_to_mpvg', 'inspect_mmpretrain_vit',
    'is_mmpretrain_vit', 'is_mmseg_vit',
    'infer_vit_arch', 'arch_preset', 'backbone_cfg', 'not_in_weights',
    'format_backbone_cfg',
    'load_checkpoint', 'check_output_path', 'save_checkpoint',
    'print_conversion', 'print_classifier_cfg', 'run_cli'
]
