# Copyright (c) mmpvg contributors. All rights reserved.
"""What every tools/model_converters command line prints, and its entry."""
import argparse
import pickle
from typing import List, Mapping, Optional, Tuple

from .arch import format_backbone_cfg

__all__ = ['converter_parser', 'print_conversion', 'print_classifier_cfg',
           'run_cli']


def converter_parser(prog: str, description: str,
                     src_help: str = 'source checkpoint file'
                     ) -> argparse.ArgumentParser:
    """The arguments every converter takes: ``src``, ``dst`` and
    ``--force`` (replace ``dst`` if it exists)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument('src', help=src_help)
    parser.add_argument('dst', help='output checkpoint file')
    parser.add_argument('--force', action='store_true',
                        help='replace dst if it exists')
    return parser


def print_conversion(src: str, direction: str, converted: Mapping,
                     ignored: List[str], detail: str = '',
                     notes: Tuple[str, ...] = ()) -> None:
    """Print what a converter wrote, the same way for every converter.

    Args:
        src (str): The source checkpoint file.
        direction (str): What was converted into what.
        converted (Mapping): The converted state dict.
        ignored (list): Checkpoint entries besides the state dict that were
            not converted (see :func:`unwrap_state_dict`).
        detail (str): Appended to the tensor/parameter count.
        notes (tuple[str]): Further lines, printed before ``ignored``.
    """
    num_params = sum(v.numel() for v in converted.values())
    print(f'Converted {src} ({direction})')
    print(f'  {len(converted)} tensors, {num_params:,} parameters{detail}')
    for note in notes:
        print(f'  {note}')
    if ignored:
        print('  not converted (other checkpoint entries): '
              + ', '.join(map(str, ignored)))


def print_classifier_cfg(arch: dict, extra: Optional[dict] = None,
                         neck: Optional[str] = None) -> None:
    """Print the backbone (and neck, head) config that loads converted
    weights, and what the weights do not show (see
    :func:`format_backbone_cfg`, which takes ``extra``); ``neck`` is the
    neck's config as text, printed before the head."""
    first, *rest = format_backbone_cfg(arch, extra).split('\n')
    print(f'  config: {first}')
    for line in rest:
        print(f'          {line}')
    if neck is not None:
        print(f'  neck={neck}')
    if arch.get('num_classes') is not None:
        print("  head=dict(type='LinearClsHead', "
              f"num_classes={arch['num_classes']}, "
              f"in_channels={arch['embed_dims']})")


def run_cli(parse_args, convert, argv=None) -> None:
    """The entry point that every tools/model_converters script shares.

    A conversion error ends the process with status 1 and a one-line
    ``prog: error: ...`` message instead of a traceback.
    """
    parser, args = parse_args(argv)
    try:
        convert(args)
    except (ValueError, OSError, pickle.UnpicklingError) as e:
        parser.exit(1, f'{parser.prog}: error: {e}\n')
