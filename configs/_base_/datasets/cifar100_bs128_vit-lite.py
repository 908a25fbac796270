# CIFAR-100 with Compact Transformers' augmentation for ViT-Lite:
# RandAugment (m9, mstd 0.5), random erasing 0.25; mixup/cutmix and label
# smoothing are in the model config.
_base_ = 'mmpretrain::_base_/datasets/cifar100_bs16.py'

rgb_mean = [129.304, 124.070, 112.434]
rgb_std = [68.170, 65.392, 70.418]
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in rgb_mean])),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=rgb_mean,
        fill_std=rgb_std),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
