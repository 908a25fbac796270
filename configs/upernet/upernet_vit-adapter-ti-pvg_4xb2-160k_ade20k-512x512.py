# UperNet, ViT-Adapter-Ti (pvg), ADE20K 512x512, 160k iterations.
_base_ = [
    '../_base_/models/upernet_vit-adapter-ti.py',
    '../_base_/datasets/ade20k_bs2.py',
    '../_base_/schedules/ade20k_adamw-lrd_160k.py',
]

pretrained = 'work_dirs/deit-tiny-pvg_8xb128_in1k/epoch_300.pth'
model = dict(
    backbone=dict(pe_mode='pvg', init_cfg=dict(checkpoint=pretrained)))
