# Copyright (c) mmpvg contributors. All rights reserved.
"""Convert mmpretrain or mmseg VisionTransformer weights to MPVGViT.

Reads an mmpretrain ``VisionTransformer`` (bare, or in an
``ImageClassifier``: DeiT presets, with or without class token, any
``out_type``) or an mmseg ``VisionTransformer`` (bare, or in a segmentor)
and writes an MPVGViT checkpoint: ``pe_mode='cls'`` with a class token,
``'gap'`` without. Prints the config that loads it. See
mmpvg/converters/mmpretrain_keys.py for the key mapping.

mmpretrain's ``out_type='avg_featmap'`` has a LayerNorm after pooling
(``ln2``) that MPVGViT's backbone has not; it goes into an mmpretrain
``LinearNeck`` with an identity linear layer (printed), or is dropped with
--drop-avg-norm.

Examples:
    python tools/model_converters/mmpretrain2mpvg.py \
        deit-tiny_pt-4xb256_in1k_20220218-13b382a0.pth \
        checkpoints/mpvg-vit_deit-tiny_cls_from-mmpretrain.pth
    python tools/model_converters/mmpretrain2mpvg.py \
        upernet_deit-s16_512x512_80k_ade20k.pth \
        checkpoints/upernet_mpvg-vit_deit-s_cls.pth
"""
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

import mmpvg  # noqa: F401  (allowlists mmengine checkpoints for torch.load)
from mmpvg.converters import (check_output_path, convert_mmpretrain_to_mpvg,
                              converter_parser, infer_vit_arch,
                              inspect_mmpretrain_vit, load_checkpoint,
                              print_classifier_cfg, print_conversion, run_cli,
                              save_checkpoint, unwrap_state_dict)
from mmpvg.converters.mmpretrain_keys import avg_norm_neck_cfg


def parse_args(argv=None):
    parser = converter_parser(
        'mmpretrain2mpvg.py', 'Convert mmpretrain or mmseg VisionTransformer '
        "weights to an MPVGViT checkpoint (pe_mode 'cls' or 'gap').")
    parser.add_argument(
        '--drop-avg-norm', action='store_true',
        help="drop mmpretrain's post-pooling LayerNorm ln2 (out_type="
        "'avg_featmap') instead of putting it in a LinearNeck; dense "
        'outputs never use it')
    return parser, parser.parse_args(argv)


def _as_text(cfg) -> str:
    """A config dict as it is written in a config file."""
    if not isinstance(cfg, dict):
        return repr(cfg)
    return 'dict(' + ', '.join(f'{k}={_as_text(v)}'
                               for k, v in cfg.items()) + ')'


def _notes(info: dict, drop_avg_norm: bool, kept: list) -> list:
    """What the conversion did besides renaming, one line each."""
    notes = []
    fmt, prefix = info['format'], info['prefix']
    if info['avg_norm']:
        if drop_avg_norm:
            notes.append(
                f"{prefix}ln2 (out_type='avg_featmap': LayerNorm after "
                'pooling) dropped (--drop-avg-norm): pooled features are '
                'mean(norm(x)), without it')
        else:
            notes.append(
                f"{prefix}ln2 (out_type='avg_featmap': LayerNorm after "
                'pooling) -> neck.norm of a LinearNeck whose neck.fc is the '
                'identity, so the logits are mmpretrain\'s')
    if not info['patch_bias']:
        notes.append('patch_embed.proj.bias set to zeros (the source '
                     'patch embedding has no bias: patch_bias=False)')
    if not info['proj_bias']:
        notes.append('blocks.*.attn.proj.bias set to zeros (mmseg '
                     'qkv_bias=False also removes the output bias)')
    if kept:
        heads = sorted({k.split('.')[0] for k in kept})
        notes.append(f'{len(kept)} key(s) outside the backbone kept '
                     f"unchanged: {', '.join(h + '.*' for h in heads)}")
    if fmt == 'mmseg':
        notes.append(
            "mmseg's with_cls_token=False (the class token only adds its PE "
            'row, then is dropped) is MPVGViT with_cls_token=False; the '
            'weights are the same either way')
        notes.append(
            'norm eps is not stored: mmseg\'s default norm_cfg=dict(type='
            "'LN') has eps 1e-5, MPVGViT's default 1e-6; if the source used "
            "1e-5, add norm_cfg=dict(type='LN', eps=1e-5)")
    return notes


def convert(args):
    check_output_path(args.dst, force=args.force, src=args.src)
    state_dict, ignored = unwrap_state_dict(load_checkpoint(args.src))
    info = inspect_mmpretrain_vit(state_dict)
    converted = convert_mmpretrain_to_mpvg(
        state_dict, avg_norm='drop' if args.drop_avg_norm else 'neck')
    arch = infer_vit_arch(converted)
    save_checkpoint(
        dict(state_dict=converted,
             meta=dict(converted_from=osp.basename(args.src),
                       converter='mmpretrain2mpvg',
                       source_format=info['format'])),
        args.dst, force=args.force)

    kept = ([k for k in state_dict if not k.startswith(info['prefix'])]
            if info['format'] == 'mmseg' else [])
    extra, neck = {}, None
    if info['format'] == 'mmseg':
        extra['out_type'] = 'featmap'
    elif info['avg_norm']:
        extra['out_type'] = 'avg_featmap'
        if not args.drop_avg_norm:
            neck = _as_text(avg_norm_neck_cfg(info['embed_dims']))
    elif not info['with_cls_token']:
        # without class token and ln2, mmpretrain's out_type was dense
        extra['out_type'] = 'featmap'
    used = ('every key of the source state dict used'
            if not (info['avg_norm'] and args.drop_avg_norm) else
            'every key but ln2 used')
    direction = (f"{info['format']} VisionTransformer -> MPVGViT "
                 f"pe_mode={arch['pe_mode']!r}")
    print_conversion(args.src, direction, converted, ignored,
                     detail=', ' + used,
                     notes=tuple(_notes(info, args.drop_avg_norm, kept)))
    if arch['num_classes'] is None and info['format'] == 'mmpretrain':
        print('  the source has no classification head')
    print_classifier_cfg(arch, extra=extra, neck=neck)
    print(f'Saved to {args.dst}')


def main(argv=None):
    run_cli(parse_args, convert, argv)


if __name__ == '__main__':
    sys.exit(main())
