# CeiT-Ti on ImageNet-1K, 8 GPUs x 128. PVG: no class token, x + PE, chain
# in blocks 1..11, LCA over the GAP tokens.
_base_ = [
    '../_base_/models/ceit-tiny.py',
    '../_base_/datasets/imagenet_bs128_deit_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_ceit.py',
]

model = dict(backbone=dict(pe_mode='pvg'))
