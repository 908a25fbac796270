# ViT-Lite-7/4 trained from scratch on CIFAR-100 (the paper's "Default").
_base_ = [
    '../_base_/models/mpvg-vit_vit-lite-7.py',
    '../_base_/datasets/cifar100_bs128_vit-lite.py',
    '../_base_/schedules/cifar100_bs128_adamw_vit-lite.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(backbone=dict(pe_mode='cls'))
