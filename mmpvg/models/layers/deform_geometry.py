# Copyright (c) mmpvg contributors. All rights reserved.
"""Where deformable attention samples: reference points and level layouts.

Free functions shared by the ViT-Adapter's injectors (ViT tokens query the
adapter's levels) and extractors (the adapter's levels query the ViT grid).
"""
from typing import List, Tuple

import torch

Shapes = List[Tuple[int, int]]


def reference_points(query_shapes: Shapes, query_strides: Shapes,
                     value_shapes: Shapes, value_strides: Shapes,
                     device=None) -> torch.Tensor:
    """Normalised reference points of query grids on value grids.

    The reference point of a query token is the centre of its cell in image
    pixels, ``stride * (index + 0.5)``, divided by the extent
    ``size * stride`` of each value level. On an image whose sides are
    multiples of every stride this is the usual ``(index + 0.5) / size``;
    on other sizes the levels cover slightly different (padded) extents and
    pixel coordinates keep a query on the very spot it came from.

    Args:
        query_shapes (list[tuple[int, int]]): (h, w) of each query grid, in
            the order the query tokens are concatenated.
        query_strides (list[tuple[int, int]]): (vertical, horizontal)
            stride of each query grid.
        value_shapes (list[tuple[int, int]]): (h, w) of each value level.
        value_strides (list[tuple[int, int]]): Strides of each value level.
        device (torch.device, optional): Device of the result.

    Returns:
        Tensor: Shape (1, num_queries, num_value_levels, 2), as (x, y) in
        [0, 1], the layout of ``MultiScaleDeformableAttention``.
    """
    centres = []
    for (h, w), (sy, sx) in zip(query_shapes, query_strides):
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * sy
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * sx
        y, x = torch.meshgrid(ys, xs, indexing='ij')
        centres.append(torch.stack([x.reshape(-1), y.reshape(-1)], -1))
    extents = torch.tensor([[w * sx, h * sy] for (h, w), (sy, sx) in zip(
        value_shapes, value_strides)], dtype=torch.float32, device=device)
    return (torch.cat(centres)[:, None, :] / extents)[None]


def level_layout(shapes: Shapes, device=None):
    """``spatial_shapes`` and ``level_start_index`` of flattened levels."""
    spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=device)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    return spatial_shapes, level_start_index
