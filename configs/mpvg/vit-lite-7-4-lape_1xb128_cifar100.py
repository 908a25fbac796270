# ViT-Lite-7/4 from scratch on CIFAR-100. LaPE: class token, layer-wise PE in
# every block.
_base_ = [
    '../_base_/models/vit-lite-7-4.py',
    '../_base_/datasets/cifar100_bs128_vit-lite.py',
    '../_base_/schedules/cifar100_bs128_adamw_vit-lite.py',
]

model = dict(backbone=dict(pe_mode='lape'))
