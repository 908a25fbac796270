# Paper ablation (DeiT-Ti, ImageNet-1K): PE also delivered to block 0 (paper: 73.31 vs MPVG 73.51).
_base_ = '../deit-tiny_mpvg_8xb128_in1k.py'

model = dict(backbone=dict(pe_first_block=True))
