# CPU demo classifier on the digits data. class token, x + PE at the input
# (ViT/DeiT, the paper's Default).
_base_ = [
    '../_base_/models/vit-demo.py',
    '../_base_/datasets/demo-digits_bs64.py',
    '../_base_/schedules/demo-digits_bs64_adamw_30e.py',
]

model = dict(backbone=dict(pe_mode='cls'))
