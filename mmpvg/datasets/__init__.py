from .demo_data import make_digits_classification
from .demo_shapes import (SHAPES_ADE_CLASSES, SHAPES_ADE_METAINFO,
                          SHAPES_ADE_PALETTE, SHAPES_COCO_CLASSES,
                          SHAPES_COCO_METAINFO, SHAPES_COCO_PALETTE,
                          make_shapes_ade, make_shapes_coco)

__all__ = [
    'make_digits_classification', 'make_shapes_coco', 'make_shapes_ade',
    'SHAPES_COCO_CLASSES', 'SHAPES_COCO_PALETTE', 'SHAPES_COCO_METAINFO',
    'SHAPES_ADE_CLASSES', 'SHAPES_ADE_PALETTE', 'SHAPES_ADE_METAINFO'
]
