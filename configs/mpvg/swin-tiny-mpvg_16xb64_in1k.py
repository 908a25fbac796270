# Swin-Ti on ImageNet-1K, 16 GPUs x 64. MPVG: PVG plus LN'_last(pos_0),
# pos_0 brought to the last grid through the patch mergings, added after
# norm3.
_base_ = [
    '../_base_/models/swin-tiny.py',
    '../_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
]

model = dict(backbone=dict(pe_mode='mpvg'))
