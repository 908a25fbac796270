# ImageNet-1K with T2T-ViT's augmentation as mmpretrain's T2T-ViT configs
# give it (RandomResizedCrop, flip, RandAugment m9 mstd 0.5, random erasing
# 0.25; test: resize 248, centre crop 224), 64 images per GPU.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs64_t2t_224.py'
