# ImageNet-1K with mmpretrain's Swin/DeiT pipeline (RandAugment m9, random
# erasing 0.25; mixup/cutmix and label smoothing are in the model), 128
# images per GPU and DeiT's repeated augmentation.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py'

train_dataloader = dict(
    batch_size=128, sampler=dict(type='RepeatAugSampler', shuffle=True))
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
