# Paper ablation (DeiT-Ti, ImageNet-1K): no x + PE at the input (paper: 73.28).
_base_ = '../deit-tiny_mpvg_8xb128_in1k.py'

model = dict(backbone=dict(pe_at_input=False))
