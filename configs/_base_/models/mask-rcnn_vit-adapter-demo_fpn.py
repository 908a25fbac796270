# Demo Mask R-CNN: a small ViT-Adapter around the demo classifier's ViT
# (6 blocks, width 96, patch 4; window attention, blocks 2 and 5 global) and
# FPN. The adapter's convolutional spatial prior gives the heads the image
# detail that the digits-pretrained ViT lacks at 32x32 tokens. The leaf sets
# pe_mode and the demo classifier's checkpoint.
_base_ = './mask-rcnn_demo.py'
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # replaces mmdet's ResNet-50
        type='MPVGViTAdapter',
        arch=dict(
            embed_dims=96, num_layers=6, num_heads=3,
            feedforward_channels=192),
        img_size=128,  # pos_0: 8x8 (digits) -> 32x32 on load
        patch_size=4,
        window_size=8,
        global_attn_indexes=(2, 5),
        drop_path_rate=0.05,
        conv_inplane=32,
        deform_num_heads=3,
        n_points=4,
        interaction_indexes=[[0, 1], [2, 3], [4, 4], [5, 5]],
        use_extra_extractor=False,
        spm_norm_cfg=dict(type='BN'),
        out_norm_cfg=dict(type='BN'),
        init_cfg=dict(type='Pretrained', prefix='backbone.')),
    neck=dict(in_channels=[96, 96, 96, 96]))
