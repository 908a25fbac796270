# Paper ablation (DeiT-Ti, ImageNet-1K): pos_8 reaches the Last LN (paper: 73.38).
_base_ = '../deit-tiny_mpvg_8xb128_in1k.py'

model = dict(backbone=dict(last_ln_pe=8))
