# Copyright (c) mmpvg contributors. All rights reserved.
"""``DemoShapesCocoDataset``: the COCO-format shapes demo in mmdet.

Importing this module imports mmdet and registers the class in mmdet's
``DATASETS`` (configs: ``custom_imports``, see :mod:`mmpvg.datasets`).
"""
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from mmpvg.demo.shapes import SHAPES_COCO_CLASSES, SHAPES_COCO_PALETTE


@DATASETS.register_module()
class DemoShapesCocoDataset(CocoDataset):
    """Instance segmentation on the shapes written by
    :func:`mmpvg.demo.make_shapes_coco`.

    A plain :class:`mmdet.datasets.CocoDataset` whose metainfo (five shape
    classes and their display colours) comes from the generator, so configs
    need not repeat it. Every argument is ``CocoDataset``'s.
    """

    METAINFO = dict(classes=SHAPES_COCO_CLASSES,
                    palette=list(SHAPES_COCO_PALETTE))
