# CPU demo of the CeiT family on the digits data. MPVG: PVG plus the mean of
# LN'_last(pos_0) after the Last LN (which follows the LCA).
_base_ = [
    '../_base_/models/ceit-demo.py',
    '../_base_/datasets/demo-digits_bs64.py',
    '../_base_/schedules/demo-digits_bs64_adamw_30e.py',
]

model = dict(backbone=dict(pe_mode='mpvg'))
