# Swin-Ti on ImageNet-1K, 16 GPUs x 64. LaPE: no PE at the input; every
# block adds LN'_l of the PE chain (through the patch mergings) to its
# attention input.
_base_ = [
    '../_base_/models/swin-tiny.py',
    '../_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
]

model = dict(backbone=dict(pe_mode='lape'))
