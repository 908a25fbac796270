# Copyright (c) mmpvg contributors. All rights reserved.
"""``MPVGSegLocalVisualizer``: mmseg's visualizer, safe for any image layout.

Importing this module imports mmseg and registers the class in mmseg's
``VISUALIZERS`` (configs: ``custom_imports``).
"""
import numpy as np
from mmseg.registry import VISUALIZERS
from mmseg.visualization import SegLocalVisualizer


@VISUALIZERS.register_module()
class MPVGSegLocalVisualizer(SegLocalVisualizer):
    """mmseg's :class:`~mmseg.visualization.SegLocalVisualizer`, given a
    C-contiguous image to draw on.

    mmseg's ``browse_dataset`` hands the visualizer a strided view of the
    packed (C, H, W) tensor; the label mask is allocated with that layout and
    OpenCV refuses to draw class names on it ("Layout of the output array img
    is incompatible with cv::Mat"). Everything else is mmseg's.

    Args:
        *args: The arguments of
            :class:`~mmseg.visualization.SegLocalVisualizer`.
        **kwargs: Its keyword arguments.
    """

    def _draw_sem_seg(self, image: np.ndarray, *args, **kwargs) -> np.ndarray:
        """Draw the segmentation map on a C-contiguous copy of ``image``.

        Args:
            image (np.ndarray): The (H, W, 3) RGB image, any layout.
            *args: The other arguments of ``SegLocalVisualizer._draw_sem_seg``.
            **kwargs: Its keyword arguments.

        Returns:
            np.ndarray: The drawn image, as mmseg returns it.
        """
        return super()._draw_sem_seg(
            np.ascontiguousarray(image), *args, **kwargs)
