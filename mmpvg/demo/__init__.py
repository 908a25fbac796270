# Copyright (c) mmpvg contributors. All rights reserved.
"""Generators of the embedded demo datasets (nothing is downloaded).

They write data in the layouts the OpenMMLab datasets read; the dataset
classes that carry their metadata are in :mod:`mmpvg.datasets`. This package
imports neither mmdet nor mmseg.
"""
from .digits import make_digits_classification
from .shapes import (SHAPES_ADE_CLASSES, SHAPES_ADE_METAINFO,
                     SHAPES_ADE_PALETTE, SHAPES_COCO_CLASSES,
                     SHAPES_COCO_METAINFO, SHAPES_COCO_PALETTE,
                     make_shapes_ade, make_shapes_coco)

__all__ = [
    'make_digits_classification', 'make_shapes_coco', 'make_shapes_ade',
    'SHAPES_COCO_CLASSES', 'SHAPES_COCO_PALETTE', 'SHAPES_COCO_METAINFO',
    'SHAPES_ADE_CLASSES', 'SHAPES_ADE_PALETTE', 'SHAPES_ADE_METAINFO'
]
