# T2T-ViT-7 on ImageNet-1K, 8 GPUs x 64. Default: class token, x + PE (the
# fixed sinusoidal table).
_base_ = [
    '../_base_/models/t2t-vit-7.py',
    '../_base_/datasets/imagenet_bs64_t2t_224.py',
    '../_base_/schedules/imagenet_bs512_adamw_t2t.py',
]

model = dict(backbone=dict(pe_mode='cls'))
