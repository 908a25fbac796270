# Demo UperNet: the demo classifier's ViT (6 blocks, width 96, patch 4)
# tapped after blocks 1/2/4/5 (as 2/5/8/11 of 12) + MultiLevelNeck, for the
# 6 demo classes on 64x64 crops with slide inference (crop 64, stride 43:
# 512 / 341 at 1/8 scale). Plain-ViT taps rather than the ViT-Adapter keep
# a CPU training step about 4x shorter. The leaf sets pe_mode and the demo
# classifier's checkpoint.
_base_ = 'mmseg::_base_/models/upernet_vit-b16_ln_mln.py'
# the visualizer of the schedule recipe (mmseg's, for any image layout)
custom_imports = dict(
    imports=['mmpvg', 'mmpvg.visualization.seg_local_visualizer'],
    allow_failed_imports=False)

norm_cfg = dict(type='BN', requires_grad=True)  # one process, CPU
# the normalisation the demo classifier learnt with (pixels / 255)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[0., 0., 0.],
    std=[255., 255., 255.],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(64, 64))
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,  # replaces mmseg's VisionTransformer
        type='MPVGViT',
        arch=dict(
            embed_dims=96, num_layers=6, num_heads=3,
            feedforward_channels=192),
        img_size=(64, 64),  # pos_0: 8x8 (digits) -> 16x16 on load
        patch_size=4,
        out_type='featmap',
        out_indices=(1, 2, 4, 5),
        drop_path_rate=0.05,
        init_cfg=dict(type='Pretrained', prefix='backbone.')),
    # patch 4: the taps are at stride 4; resize them to strides 4/8/16/32
    neck=dict(
        in_channels=[96, 96, 96, 96],
        out_channels=96,
        scales=[1, 0.5, 0.25, 0.125]),
    decode_head=dict(
        in_channels=[96, 96, 96, 96],
        channels=64,
        num_classes=6,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=96,
        in_index=2,
        channels=32,
        num_classes=6,
        norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(43, 43)))
