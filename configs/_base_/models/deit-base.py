# MPVGViT DeiT-Base classifier for ImageNet-1K: DeiT-Tiny's, wider.
_base_ = './deit-tiny.py'

model = dict(backbone=dict(arch='deit-base'), head=dict(in_channels=768))
