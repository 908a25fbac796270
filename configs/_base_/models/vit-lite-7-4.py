# MPVGViT ViT-Lite-7/4 classifier for CIFAR-100 (Compact Transformers'
# ViT-Lite: patch 4, 32x32, post-attention norm, no qkv bias, PE std 0.2).
# pe_mode is set by the leaf (configs/README.md).
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MPVGViT',
        arch='vit-lite-7',
        attn_drop_rate=0.1,
        drop_path_rate=0.1),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=256,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]),
)
