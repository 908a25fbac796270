# Copyright (c) mmpvg contributors. All rights reserved.
"""Visualizers, one module per task package; nothing is imported here.

- :mod:`mmpvg.visualization.seg_local_visualizer`: ``MPVGSegLocalVisualizer``
  (mmseg), named by the segmentation configs and imported through their
  ``custom_imports``.
"""
