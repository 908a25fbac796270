# Copyright (c) mmpvg contributors. All rights reserved.
"""``DemoShapesCocoDataset``: the COCO-format shapes demo in mmdet.

Importing this module imports mmdet and registers the class in mmdet's
``DATASETS`` (configs: ``custom_imports``, see :mod:`mmpvg.datasets`).
"""
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from mmpvg.demo.shapes import SHAPES_COCO_CLASSES, SHAPES_COCO_PALETTE
from mmpvg.utils.errors import InputError


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

    def load_data_list(self):
        """mmdet's list, refused when the file holds no annotation at all:
        CocoMetric would then report AP -1.000 and the run exit 0.

        Raises:
            InputError: Naming the file.
        """
        data_list = super().load_data_list()
        if not any(info['instances'] for info in data_list):
            raise InputError(
                f'{self.ann_file} has {len(data_list)} images but no '
                'annotation of the classes '
                f'{list(self.metainfo["classes"])}, so there is nothing to '
                'train on or to evaluate against (AP would be -1). The demo '
                'files written by tools/dataset_converters/make_demo_data.py '
                'annotate every image.')
        return data_list
