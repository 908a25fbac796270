# The small MPVGCeiT classifier of the CPU demo (4 blocks, width 96, LeFF x2;
# the I2T stem takes 32x32 inputs to 8x8 tokens with patch 1) for the 10
# digit classes. pe_mode is set by the leaf.
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MPVGCeiT',
        arch=dict(
            embed_dims=96, num_layers=4, num_heads=3,
            feedforward_channels=192, stem_channels=32, patch_size=1,
            lca_feedforward_channels=192),
        img_size=32,
        drop_path_rate=0.05),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=96,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02)),
)
