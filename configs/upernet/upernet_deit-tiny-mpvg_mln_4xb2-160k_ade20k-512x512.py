# UperNet, plain DeiT-Ti (mpvg) tapped after blocks 2/5/8/11 +
# MultiLevelNeck, ADE20K 512x512, 160k iterations: the ViT-Adapter configs'
# recipe without the adapter.
_base_ = [
    '../_base_/models/upernet_deit-tiny_mln.py',
    '../_base_/datasets/ade20k_bs2.py',
    '../_base_/schedules/ade20k_adamw-lrd_160k.py',
]

pretrained = 'work_dirs/deit-tiny-mpvg_8xb128_in1k/epoch_300.pth'
model = dict(
    backbone=dict(pe_mode='mpvg', init_cfg=dict(checkpoint=pretrained)))
