# Paper ablation (DeiT-Ti, ImageNet-1K): every block uses LN'_l(pos_0) (paper: 73.48).
_base_ = '../deit-tiny_mpvg_8xb128_in1k.py'

model = dict(backbone=dict(hierarchical_pe=False))
