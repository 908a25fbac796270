# ImageNet-1K with mmpretrain's Swin pipeline (RandAugment m9, random
# erasing 0.25; mixup/cutmix and label smoothing are in the model), 64
# images per GPU.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py'
