# CeiT-Ti on ImageNet-1K, 8 GPUs x 128. GAP: no class token, x + PE,
# LCA over each block's GAP token.
_base_ = [
    '../_base_/models/ceit-tiny.py',
    '../_base_/datasets/imagenet_bs128_deit_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_ceit.py',
]

model = dict(backbone=dict(pe_mode='gap'))
