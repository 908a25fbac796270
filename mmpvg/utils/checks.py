# Copyright (c) mmpvg contributors. All rights reserved.
"""Checks of the constructor arguments the backbone families share.

A bad size, rate or switch would otherwise fail far from its cause (a
ZeroDivisionError in a grid computation, a conv error at the first forward)
or not at all (``attn_drop_rate=1.0`` zeroes every attention weight,
``pe_at_input='False'`` is truthy). Each check raises one message that
names the argument, its value and what is accepted. Torch-free, like
:mod:`mmpvg.utils.grid`.
"""
import numbers
from typing import Sequence

# modes F.interpolate accepts for a 2-D grid (the PE is resized as an image)
INTERPOLATE_MODES = ('nearest', 'nearest-exact', 'bilinear', 'bicubic',
                     'area')


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(name: str, value) -> int:
    """``value`` if it is an int >= 1.

    Raises:
        ValueError: Otherwise.
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f'{name} must be an int >= 1, got {value!r}.')
    return int(value)


def check_size(name: str, value):
    """``value`` if it is a positive int or a pair (h, w) of them.

    Raises:
        ValueError: Otherwise (0, a negative size, a float, three entries).
    """
    entries = (list(value) if isinstance(value, (list, tuple)) else [value])
    if not 1 <= len(entries) <= 2 or not all(
            _is_int(v) and v >= 1 for v in entries):
        raise ValueError(f'{name} must be a positive int or a pair (h, w) '
                         f'of positive ints, got {value!r}.')
    return value


def check_rate(name: str, value) -> float:
    """``value`` if it is a probability in [0, 1).

    1 is refused too: it drops everything (every attention weight, every
    token, every residual branch), which trains nothing.

    Raises:
        ValueError: Otherwise.
    """
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not 0 <= value < 1):
        raise ValueError(f'{name} must be a number in [0, 1), got {value!r}.')
    return float(value)


def check_flag(name: str, value, optional: bool = True):
    """``value`` if it is a bool (or None where ``optional``).

    A string such as ``'False'`` (e.g. from ``--cfg-options`` quoting) is
    truthy and would silently mean True.

    Raises:
        ValueError: Otherwise.
    """
    if isinstance(value, bool) or (optional and value is None):
        return value
    accepted = 'True, False or None' if optional else 'True or False'
    raise ValueError(f'{name} must be {accepted}, got {value!r}.')


def check_choice(name: str, value, choices: Sequence):
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: Otherwise.
    """
    if value not in choices:
        raise ValueError(f'{name}={value!r} is not supported; choose from '
                         f'{list(choices)}.')
    return value


def check_indices(name: str, value, allow_empty: bool = False):
    """``value`` if it is an int or a sequence of ints, non-empty unless
    ``allow_empty`` (their range is the backbone's to check).

    Raises:
        ValueError: Otherwise.
    """
    entries = [value] if _is_int(value) else value
    if (not isinstance(entries, (list, tuple))
            or not (entries or allow_empty)
            or not all(_is_int(i) for i in entries)):
        kind = 'a list' if allow_empty else 'a non-empty list'
        raise ValueError(f'{name} must be an int or {kind} of ints, got '
                         f'{value!r}.')
    return value


def check_backbone_args(**args):
    """Check the shared arguments a backbone was given, by name.

    Sizes (``img_size``, ``patch_size``), positive ints (``in_channels``,
    ``embed_dims``, ``num_layers``, ``num_heads``, ``feedforward_channels``,
    ``window_size``), rates (``drop_rate``, ``attn_drop_rate``,
    ``drop_path_rate``), ``interpolate_mode`` and ``out_indices``. A value of
    None means "the default" and is not checked.

    Raises:
        ValueError: For the first argument that is not accepted.
        TypeError: For a name this function does not know (a bug).
    """
    for name, value in args.items():
        if value is None:
            continue
        if name in ('img_size', 'patch_size'):
            check_size(name, value)
        elif name in ('in_channels', 'embed_dims', 'num_layers', 'num_heads',
                      'feedforward_channels', 'window_size'):
            check_positive_int(name, value)
        elif name in ('drop_rate', 'attn_drop_rate', 'drop_path_rate'):
            check_rate(name, value)
        elif name == 'interpolate_mode':
            check_choice(name, value, INTERPOLATE_MODES)
        elif name == 'out_indices':
            check_indices(name, value)
        else:
            raise TypeError(f'check_backbone_args does not know {name!r}.')
