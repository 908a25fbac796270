# UperNet + auxiliary FCN head on the plain DeiT-Ti MPVGViT, tapped after
# blocks 2/5/8/11 (stride 16) and resized to strides 4/8/16/32 by mmseg's
# MultiLevelNeck, as mmseg's ViT UperNet; set up for ADE20K at 512x512 like
# upernet_vit-adapter-ti.py. The last tap is LN_last(x_L) [+ LN'_last(pos_0)
# for mpvg], the feature the classifier pools.
# The leaf sets pe_mode and the ImageNet-1K checkpoint (init_cfg.checkpoint).
_base_ = 'mmseg::_base_/models/upernet_vit-b16_ln_mln.py'
# the visualizer of the schedule recipe (mmseg's, for any image layout)
custom_imports = dict(
    imports=['mmpvg', 'mmpvg.visualization.seg_local_visualizer'],
    allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,  # replaces mmseg's VisionTransformer
        type='MPVGViT',
        arch='deit-tiny',
        img_size=512,
        patch_size=16,
        out_type='featmap',
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', prefix='backbone.')),
    neck=dict(in_channels=[192, 192, 192, 192], out_channels=192),
    decode_head=dict(
        in_channels=[192, 192, 192, 192],
        num_classes=150,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=192,
        in_index=2,
        num_classes=150,
        norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
