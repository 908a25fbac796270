# DeiT-S on ImageNet-1K, 8 GPUs x 128. class token, x + PE at the input
# (ViT/DeiT, the paper's Default).
_base_ = [
    '../_base_/models/deit-small.py',
    '../_base_/datasets/imagenet_bs128_deit_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_deit.py',
]

model = dict(backbone=dict(pe_mode='cls'))
