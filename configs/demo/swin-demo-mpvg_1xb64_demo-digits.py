# CPU demo Swin classifier on the digits data. MPVG: the layer-wise PE chain
# in every block (through the patch merging) plus LN'_last(pos_0) after the
# last stage's norm.
_base_ = [
    '../_base_/models/swin-demo.py',
    '../_base_/datasets/demo-digits_bs64.py',
    '../_base_/schedules/demo-digits_bs64_adamw-swin_30e.py',
]

model = dict(backbone=dict(pe_mode='mpvg'))
