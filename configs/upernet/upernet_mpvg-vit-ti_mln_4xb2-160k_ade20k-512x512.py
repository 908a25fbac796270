# Plain-ViT variant: UperNet + auxiliary FCN head on the MPVG DeiT-Ti itself,
# tapped after blocks 2, 5, 8 and 11 (stride 16) and resized to strides
# 4/8/16/32 by mmseg's MultiLevelNeck, as mmseg's DeiT UperNet configs do.
# Same recipe as the ViT-Adapter configs (they set optimizer, schedule,
# batch, slide inference); only the backbone and neck differ. The last tap
# is LN_last(x_L) + LN'_last(pos_0), the feature the classifier pools.
_base_ = './upernet_mpvg-adapter-ti_4xb2-160k_ade20k-512x512.py'

# From configs/mpvg/deit-tiny_mpvg_8xb128_in1k.py (see the base config).
pretrained = 'work_dirs/deit-tiny_mpvg_8xb128_in1k/epoch_300.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='MPVGViT',
        arch='deit-tiny',
        pe_mode='mpvg',
        img_size=512,
        patch_size=16,
        out_type='featmap',
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[192, 192, 192, 192],
        out_channels=192,
        scales=[4, 2, 1, 0.5]))
