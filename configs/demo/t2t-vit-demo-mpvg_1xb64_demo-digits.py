# CPU demo T2T-ViT classifier on the digits data. MPVG: PVG plus
# LN'_last(pos_0) at the Last LN.
_base_ = [
    '../_base_/models/t2t-vit-demo.py',
    '../_base_/datasets/demo-digits_bs64.py',
    '../_base_/schedules/demo-digits_bs64_adamw_30e.py',
]

model = dict(backbone=dict(pe_mode='mpvg'))
