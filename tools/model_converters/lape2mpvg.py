# Copyright (c) mmpvg contributors. All rights reserved.
"""Convert official LaPE (DeiT fork) weights to an MPVGViT pe_mode='lape'
classifier (mmpretrain ImageClassifier + LinearClsHead).

LaPE's ``blocks.{i}.pe_norm`` becomes ``backbone.pe.norms.{i}``; the other
keys are renamed as by deit2mpvg.py.

Example:
    python tools/model_converters/lape2mpvg.py lape_deit_tiny.pth \
        checkpoints/mpvg-vit_deit-tiny_lape_in1k.pth
"""
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

import mmpvg  # noqa: F401  (allowlists mmengine checkpoints for torch.load)
from mmpvg.converters import (check_output_path, convert_lape_to_mpvg,
                              converter_parser,
                              infer_vit_arch, load_checkpoint,
                              print_classifier_cfg, print_conversion, run_cli,
                              save_checkpoint, unwrap_state_dict)


def parse_args(argv=None):
    parser = converter_parser(
        'lape2mpvg.py', 'Convert official LaPE weights to an MPVGViT '
        "pe_mode='lape' classifier.")
    return parser, parser.parse_args(argv)


def convert(args):
    check_output_path(args.dst, force=args.force, src=args.src)
    state_dict, ignored = unwrap_state_dict(load_checkpoint(args.src))
    converted = convert_lape_to_mpvg(state_dict)
    arch = infer_vit_arch(converted)
    save_checkpoint(
        dict(state_dict=converted,
             meta=dict(converted_from=osp.basename(args.src),
                       converter='lape2mpvg')),
        args.dst, force=args.force)

    print_conversion(
        args.src, "LaPE -> MPVGViT pe_mode='lape'", converted, ignored,
        detail=', every key of the source state dict used',
        notes=(f'blocks.{{i}}.pe_norm -> backbone.pe.norms.{{i}} for '
               f"{arch['num_layers']} blocks", ))
    if arch['num_classes'] is None:
        print('  the source has no classification head')
    print_classifier_cfg(arch)
    print(f'Saved to {args.dst}')


def main(argv=None):
    run_cli(parse_args, convert, argv)


if __name__ == '__main__':
    sys.exit(main())
