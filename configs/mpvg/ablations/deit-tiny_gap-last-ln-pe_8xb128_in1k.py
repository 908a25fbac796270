# Paper ablation (DeiT-Ti, ImageNet-1K): GAP + Last-LN PE without the layer-wise path, Fig. 5b (paper: 72.14, GAP alone 72.40).
_base_ = '../deit-tiny_mpvg_8xb128_in1k.py'

model = dict(backbone=dict(layerwise_pe=False))
