# Copyright (c) mmpvg contributors. All rights reserved.
"""Analyses of trained models (the paper's position-embedding analysis)."""
from .pe_analysis import (PAPER_LAYERS, PEAnalysis, analyze_pe,
                          default_layers, has_layerwise_pe, layer_pe_map,
                          pearson_correlation)

__all__ = [
    'PAPER_LAYERS', 'PEAnalysis', 'analyze_pe', 'default_layers',
    'has_layerwise_pe', 'layer_pe_map', 'pearson_correlation'
]
