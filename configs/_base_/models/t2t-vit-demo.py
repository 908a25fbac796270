# The small T2T-ViT classifier of the CPU demo for the 10 digit classes:
# T2T-ViT-7's structure (Performer tokens-to-token stem, fixed sinusoidal
# pos_0, LN eps 1e-5, no qkv bias) at demo size. Its soft splits (kernels
# 3/3/3, strides 2/2/1) take 32x32 images to 8x8 tokens, as patch 4 does for
# the ViT demo. pe_mode is set by the leaf.
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MPVGViT',
        arch=dict(
            embed_dims=96, num_layers=6, num_heads=3,
            feedforward_channels=192, qkv_bias=False, stem='t2t',
            t2t_cfg=dict(
                token_dims=32, kernel_sizes=(3, 3, 3), strides=(2, 2, 1),
                paddings=(1, 1, 1)),
            pos_embed_type='sinusoidal', norm_eps=1e-5),
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
