_base_ = './upernet_mpvg-adapter-ti_4xb2-160k_ade20k-512x512.py'

# From configs/mpvg/deit-tiny_cls_8xb128_in1k.py (see the base config).
pretrained = 'work_dirs/deit-tiny_cls_8xb128_in1k/epoch_300.pth'
model = dict(
    backbone=dict(
        pe_mode='cls',
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
