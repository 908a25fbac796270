# Copyright (c) mmpvg contributors. All rights reserved.
"""Dataset classes of the demo data, one module per task.

Each module imports its task package (mmdet or mmseg) and registers its
class in that package's ``DATASETS``, so nothing is imported here: a config
names the module it needs, e.g.::

    custom_imports = dict(
        imports=['mmpvg', 'mmpvg.datasets.demo_shapes_coco'],
        allow_failed_imports=False)

- :mod:`mmpvg.datasets.demo_shapes_coco`: ``DemoShapesCocoDataset`` (mmdet)
- :mod:`mmpvg.datasets.demo_shapes_ade`: ``DemoShapesADE20KDataset`` (mmseg)

The generators that write the data are in :mod:`mmpvg.demo`.
"""
