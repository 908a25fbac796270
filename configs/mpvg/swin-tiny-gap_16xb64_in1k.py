# Swin-Ti on ImageNet-1K, 16 GPUs x 64. GAP, the paper's Default Swin:
# absolute PE at the input and the relative position bias.
_base_ = [
    '../_base_/models/swin-tiny.py',
    '../_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
]

model = dict(backbone=dict(pe_mode='gap'))
