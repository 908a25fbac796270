# Copyright (c) mmpvg contributors. All rights reserved.
"""Turn an MPVGViT classification checkpoint into a detection/segmentation
backbone checkpoint.

Keeps the keys under --src-prefix (the backbone), moves them under
--dst-prefix, resizes the position embedding to the downstream token grid
(--img-size [with --patch-size] or --patch-resolution; bicubic, as MPVGViT)
and lists every key it did not use (the classification head, ...).

Examples:
    # for an mmseg model with crop 512 (backbone.* keys, 32x32 PE grid)
    python tools/model_converters/mpvg2backbone.py \
        work_dirs/deit-tiny_mpvg_8xb128_in1k/epoch_300.pth \
        checkpoints/mpvg-deit-tiny_backbone_512.pth --img-size 512
    # a bare backbone state dict (for init_cfg without prefix)
    python tools/model_converters/mpvg2backbone.py cls.pth backbone.pth \
        --dst-prefix ''
"""
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

import mmpvg  # noqa: F401  (allowlists mmengine checkpoints for torch.load)
from mmpvg.converters import (check_output_path,
                              convert_classifier_to_backbone,
                              converter_parser, load_checkpoint,
                              print_conversion, run_cli, save_checkpoint,
                              unwrap_state_dict)


def parse_args(argv=None):
    parser = converter_parser(
        'mpvg2backbone.py', 'Extract the MPVGViT backbone of a '
        'classification checkpoint for detection/segmentation, resizing its '
        'position embedding.', src_help='classification checkpoint file')
    parser.add_argument(
        '--src-prefix', default='backbone.',
        help="prefix of the backbone keys in src (default: 'backbone.')")
    parser.add_argument(
        '--dst-prefix', default='backbone.',
        help="prefix of the backbone keys in dst (default: 'backbone.'; "
        "'' for a bare backbone)")
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument(
        '--img-size', type=int, nargs='+', metavar='SIZE',
        help='downstream input size, H [W]: the PE is resized to '
        'ceil(size / patch size) tokens')
    grid.add_argument(
        '--patch-resolution', type=int, nargs='+', metavar='TOKENS',
        help='downstream token grid, H [W]')
    parser.add_argument(
        '--patch-size', type=int, nargs='+', metavar='SIZE',
        help='patch size, P [P], used with --img-size (default: read from '
        'patch_embed.proj.weight)')
    parser.add_argument(
        '--interpolate-mode', default='bicubic',
        choices=['nearest', 'bilinear', 'bicubic'],
        help='PE interpolation (default: bicubic, as MPVGViT)')
    args = parser.parse_args(argv)
    for name in ('img_size', 'patch_resolution', 'patch_size'):
        value = getattr(args, name)
        if value is not None and len(value) > 2:
            parser.error(f"--{name.replace('_', '-')} takes one or two "
                         f'values (H [W]), got {len(value)}.')
    if args.patch_size is not None and args.img_size is None:
        parser.error('--patch-size is only used with --img-size.')
    return parser, args


def convert(args):
    check_output_path(args.dst, force=args.force, src=args.src)
    state_dict, ignored = unwrap_state_dict(load_checkpoint(args.src))
    converted, unused = convert_classifier_to_backbone(
        state_dict,
        src_prefix=args.src_prefix,
        dst_prefix=args.dst_prefix,
        patch_resolution=args.patch_resolution,
        img_size=args.img_size,
        patch_size=args.patch_size,
        interpolate_mode=args.interpolate_mode)
    save_checkpoint(
        dict(state_dict=converted,
             meta=dict(converted_from=osp.basename(args.src),
                       converter='mpvg2backbone')),
        args.dst, force=args.force)

    pos_key = args.src_prefix + 'pe.pos_embed'
    old = tuple(state_dict[pos_key].shape)
    new = tuple(converted[args.dst_prefix + 'pe.pos_embed'].shape)
    if old == new:
        pe_note = f'pe.pos_embed kept at shape {old}'
    else:
        pe_note = (f'pe.pos_embed resized from {old} to {new} '
                   f'({args.interpolate_mode})')
    print_conversion(args.src, 'classifier -> backbone', converted, ignored,
                     detail=f': {args.src_prefix!r}* -> {args.dst_prefix!r}*',
                     notes=(pe_note, ))
    print(f'  {len(unused)} unused key(s)' + (':' if unused else ''))
    for key in unused:
        print(f'    {key} {tuple(state_dict[key].shape)}')
    print(f'Saved to {args.dst}')


def main(argv=None):
    run_cli(parse_args, convert, argv)


if __name__ == '__main__':
    sys.exit(main())
