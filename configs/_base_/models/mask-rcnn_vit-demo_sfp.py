# Demo Mask R-CNN: the demo classifier's ViT (6 blocks, width 96, patch 4)
# with window attention (blocks 2 and 5 global) and a simple feature
# pyramid from its stride-4 map. The leaf sets pe_mode and the demo
# classifier's checkpoint.
_base_ = './mask-rcnn_demo.py'
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # replaces mmdet's ResNet-50
        type='MPVGViT',
        arch=dict(
            embed_dims=96, num_layers=6, num_heads=3,
            feedforward_channels=192),
        img_size=128,  # pos_0: 8x8 (digits) -> 32x32 on load
        patch_size=4,
        out_type='featmap',
        window_size=8,
        global_attn_indexes=(2, 5),
        drop_path_rate=0.05,
        init_cfg=dict(type='Pretrained', prefix='backbone.')),
    neck=dict(
        _delete_=True,  # replaces mmdet's FPN
        type='SimpleFeaturePyramid',
        in_channels=96,
        out_channels=64,
        # the stride-4 token map to strides 4, 8, 16, 32 (+ 64 for the RPN)
        scale_factors=(1.0, 0.5, 0.25, 0.125),
        num_outs=5,
        norm_cfg=dict(type='LN2d', eps=1e-6)))
