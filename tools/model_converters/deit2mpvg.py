# Copyright (c) mmpvg contributors. All rights reserved.
"""Convert timm/DeiT ViT weights to an MPVGViT pe_mode='cls' classifier.

With --reverse, convert an MPVGViT pe_mode='cls' classifier (mmpretrain
ImageClassifier + LinearClsHead) back to timm's VisionTransformer names.

Examples:
    python tools/model_converters/deit2mpvg.py \
        deit_tiny_patch16_224-a1311bcf.pth \
        checkpoints/mpvg-vit_deit-tiny_cls_in1k.pth
    python tools/model_converters/deit2mpvg.py --reverse \
        work_dirs/deit-tiny_cls_8xb128_in1k/epoch_300.pth deit_tiny_timm.pth
"""
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

import mmpvg  # noqa: F401  (allowlists mmengine checkpoints for torch.load)
from mmpvg.models import MPVGViT
from mmpvg.converters import (arch_preset, check_output_path, converter_parser,
                              convert_mpvg_to_timm, convert_timm_to_mpvg,
                              infer_vit_arch, load_checkpoint,
                              print_classifier_cfg, print_conversion, run_cli,
                              save_checkpoint, unwrap_state_dict)


def parse_args(argv=None):
    parser = converter_parser(
        'deit2mpvg.py', 'Convert timm/DeiT ViT weights to an MPVGViT '
        "pe_mode='cls' classifier, or back with --reverse.")
    parser.add_argument(
        '--reverse', action='store_true',
        help="convert an MPVGViT pe_mode='cls' classifier to timm instead")
    parser.add_argument(
        '--prefix', default='backbone.',
        help='with --reverse: prefix of the backbone keys '
        "(default: 'backbone.')")
    return parser, parser.parse_args(argv)


def convert(args):
    check_output_path(args.dst, force=args.force, src=args.src)
    state_dict, ignored = unwrap_state_dict(load_checkpoint(args.src))
    if args.reverse:
        converted = convert_mpvg_to_timm(state_dict, prefix=args.prefix)
        arch = infer_vit_arch(state_dict, prefix=args.prefix)
        direction = "MPVGViT pe_mode='cls' -> timm VisionTransformer"
        output = converted  # timm loads bare state dicts
    else:
        converted = convert_timm_to_mpvg(state_dict)
        arch = infer_vit_arch(converted)
        direction = "timm/DeiT ViT -> MPVGViT pe_mode='cls'"
        output = dict(
            state_dict=converted,
            meta=dict(converted_from=osp.basename(args.src),
                      converter='deit2mpvg'))
    save_checkpoint(output, args.dst, force=args.force)

    print_conversion(args.src, direction, converted, ignored,
                     detail=', every key of the source state dict used')
    if arch['num_classes'] is None:
        print('  the source has no classification head')
    if args.reverse:
        ratio = arch['feedforward_channels'] / arch['embed_dims']
        preset = arch_preset(arch)
        heads = ('<as in the MPVGViT config>' if preset is None else
                 MPVGViT.arch_zoo[preset]['num_heads'])
        print('  timm model: VisionTransformer('
              f"img_size={arch['img_size']}, patch_size={arch['patch_size']}"
              f", embed_dim={arch['embed_dims']}, depth={arch['num_layers']}"
              f', num_heads={heads}, mlp_ratio={ratio:g}'
              f", qkv_bias={arch['qkv_bias']}, "
              f"num_classes={arch['num_classes'] or 0}, "
              "norm_layer=partial(nn.LayerNorm, eps=1e-6))")
    else:
        print_classifier_cfg(arch)
    print(f'Saved to {args.dst}')


def main(argv=None):
    run_cli(parse_args, convert, argv)


if __name__ == '__main__':
    sys.exit(main())
