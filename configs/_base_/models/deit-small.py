# MPVGViT DeiT-Small classifier for ImageNet-1K: DeiT-Tiny's, wider.
_base_ = './deit-tiny.py'

model = dict(backbone=dict(arch='deit-small'), head=dict(in_channels=384))
