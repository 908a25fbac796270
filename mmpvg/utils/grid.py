# Copyright (c) mmpvg contributors. All rights reserved.
"""Token-grid arithmetic shared by the backbones and the converters.

Two questions come up wherever a position embedding (PE) is stored, loaded
or converted: how many tokens does an image of a given size give, and is a
PE of ``rows`` rows a square token grid (plus class-token rows)? They are
answered here once, with nothing but integer arithmetic, so that this module
can be imported from anywhere without pulling in torch.
"""
import math
from typing import Optional, Sequence, Tuple, Union

Size = Union[int, Sequence[int]]


def as_pair(value: Size, name: str = 'size') -> Tuple[int, int]:
    """``(h, w)`` from an int or a sequence of one or two ints.

    Args:
        value (int | Sequence[int]): ``s`` or ``(s,)`` for ``(s, s)``, or
            ``(h, w)``.
        name (str): What the value is, for the error message.

    Raises:
        ValueError: If ``value`` has more than two entries or none.
    """
    if not hasattr(value, '__iter__'):  # int, or a NumPy / torch integer
        return (int(value), int(value))
    pair = tuple(int(v) for v in value)
    if len(pair) == 1:
        return (pair[0], pair[0])
    if len(pair) != 2:
        raise ValueError(
            f'Expected one or two {name}s (h, w), got {tuple(value)}.')
    return pair


def token_grid(img_size: Size, patch_size: Size) -> Tuple[int, int]:
    """The token grid ``(h, w)`` of an image: ``ceil(size / patch)`` per side.

    The patch embedding pads the bottom and right of an image to a multiple
    of the patch size, hence the rounding up.

    Args:
        img_size (int | Sequence[int]): Image size, ``s`` or ``(H, W)``.
        patch_size (int | Sequence[int]): Patch size, ``p`` or ``(ph, pw)``.

    Returns:
        tuple[int, int]: Number of token rows and columns.

    Raises:
        ValueError: If a size is not positive or has more than two entries.
    """
    img_hw = as_pair(img_size, 'image size')
    patch_hw = as_pair(patch_size, 'patch size')
    if min(img_hw) < 1 or min(patch_hw) < 1:
        raise ValueError(f'Image size {img_hw} and patch size {patch_hw} '
                         'must be positive.')
    return tuple(-(-i // p) for i, p in zip(img_hw, patch_hw))


def pos_embed_grid(rows: int, num_extra_tokens: Optional[int] = None
                   ) -> Optional[Tuple[int, int]]:
    """Read a PE of ``rows`` rows as extra (class-token) rows + a square grid.

    Args:
        rows (int): Number of rows of the PE (its length in tokens).
        num_extra_tokens (int, optional): The number of extra rows the PE
            must have. ``None`` tries 0 and then 1 (no class token, or one).
            The two readings never both fit, except for ``rows == 1`` (a
            1x1 grid), which reads as 0 extra rows.

    Returns:
        tuple[int, int] | None: ``(num_extra_tokens, side)`` such that
        ``rows == num_extra_tokens + side * side`` with ``side >= 1``, or
        None if ``rows`` is not of that form.

    Raises:
        ValueError: If ``num_extra_tokens`` is negative.
    """
    if num_extra_tokens is not None and num_extra_tokens < 0:
        raise ValueError(
            f'num_extra_tokens must be >= 0, got {num_extra_tokens}.')
    for extra in ((0, 1) if num_extra_tokens is None else
                  (num_extra_tokens, )):
        tokens = rows - extra
        if tokens < 1:
            continue
        side = math.isqrt(tokens)
        if side * side == tokens:
            return extra, side
    return None
