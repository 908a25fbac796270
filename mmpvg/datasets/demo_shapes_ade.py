# Copyright (c) mmpvg contributors. All rights reserved.
"""``DemoShapesADE20KDataset``: the ADE20K-layout shapes demo in mmseg.

Importing this module imports mmseg and registers the class in mmseg's
``DATASETS`` (configs: ``custom_imports``, see :mod:`mmpvg.datasets`).
"""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from mmpvg.demo.shapes import SHAPES_ADE_CLASSES, SHAPES_ADE_PALETTE
from mmpvg.utils.errors import InputError


@DATASETS.register_module()
class DemoShapesADE20KDataset(BaseSegDataset):
    """Semantic segmentation on the scenes written by
    :func:`mmpvg.demo.make_shapes_ade`.

    The files follow ADE20K: ``images/{training,validation}/*.jpg`` and
    8-bit label maps ``annotations/{training,validation}/*.png`` in which 0
    is "unlabelled" and 1..6 are :data:`~mmpvg.demo.SHAPES_ADE_CLASSES`.
    So, as for ADE20K, ``reduce_zero_label`` defaults to True (value 0
    becomes the ignore index 255 and value k the train id k - 1). The
    metainfo (classes, palette) comes from the generator.

    Args:
        img_suffix (str): Defaults to '.jpg'.
        seg_map_suffix (str): Defaults to '.png'.
        reduce_zero_label (bool): Defaults to True.
        **kwargs: The other arguments of
            :class:`mmseg.datasets.BaseSegDataset`.
    """

    METAINFO = dict(classes=SHAPES_ADE_CLASSES,
                    palette=[list(c) for c in SHAPES_ADE_PALETTE])

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)

    def prepare_data(self, idx):
        """The pipeline's output, refused when its label map holds a value
        that is neither a class id nor the ignore index: mmseg's IoUMetric
        would drop those pixels without a word.

        Raises:
            ValueError: Naming the file and the values.
        """
        results = super().prepare_data(idx)
        sample = (results.get('data_samples')
                  if isinstance(results, dict) else None)
        if sample is not None and 'gt_sem_seg' in sample:
            labels = sample.gt_sem_seg.data.unique().tolist()
            num_classes = len(self.metainfo['classes'])
            ignore = self.ignore_index
            bad = [v for v in labels if v != ignore and not
                   0 <= v < num_classes]
            if bad:
                raise InputError(
                    f'{self.get_data_info(idx)["seg_map_path"]}: label '
                    f'values {bad} (after reduce_zero_label='
                    f'{self.reduce_zero_label}) are outside the '
                    f'{num_classes} classes; accepted: 0..{num_classes - 1}'
                    f' and the ignore index {ignore}.')
        return results
