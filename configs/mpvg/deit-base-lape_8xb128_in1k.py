# DeiT-B on ImageNet-1K, 8 GPUs x 128. LaPE: class token, layer-wise PE in
# every block.
_base_ = [
    '../_base_/models/deit-base.py',
    '../_base_/datasets/imagenet_bs128_deit_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_deit.py',
]

model = dict(backbone=dict(pe_mode='lape'))
