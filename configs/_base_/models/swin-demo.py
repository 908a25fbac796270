# The small MPVGSwin classifier of the CPU demo (2 stages of 2 blocks,
# width 48 -> 96, patch 4, window 4: 8x8 tokens in shifted 4x4 windows, then
# 4x4 tokens in one window, at 32x32) for the 10 digit classes. pe_mode is
# set by the leaf.
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MPVGSwin',
        arch=dict(embed_dims=48, depths=[2, 2], num_heads=[3, 6]),
        img_size=32,
        patch_size=4,
        window_size=4,
        out_indices=(1, ),
        drop_path_rate=0.05),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=96,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02)),
)
