# The classifier that tools/run_demo.sh pretrains: the mpvg digits demo on
# the 12-epoch schedule (the PE-mode tables compare the 30-epoch leaves).
_base_ = [
    '../_base_/models/vit-demo.py',
    '../_base_/datasets/demo-digits_bs64.py',
    '../_base_/schedules/demo-digits_bs64_adamw_12e.py',
]

model = dict(backbone=dict(pe_mode='mpvg'))
