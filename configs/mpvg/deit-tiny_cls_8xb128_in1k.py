# DeiT-Ti with a class token and x + PE at the input (the paper's "Default").
_base_ = [
    '../_base_/models/mpvg-vit_deit-tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_deit.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(backbone=dict(pe_mode='cls'))

# 8 GPUs x 128 = 1024 images per step; DeiT's repeated augmentation.
train_dataloader = dict(
    batch_size=128, sampler=dict(type='RepeatAugSampler', shuffle=True))
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
