# MPVGViT T2T-ViT-7 classifier for ImageNet-1K (Performer tokens-to-token
# stem, fixed sinusoidal pos_0), with T2T-ViT's regularisation (the defaults
# of its main.py: drop path 0.1, label smoothing 0.1, mixup 0.8, cutmix 1.0).
# pe_mode is set by the leaf (configs/README.md).
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MPVGViT',
        arch='t2t-vit-7',
        img_size=224,
        drop_path_rate=0.1),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=256,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]),
)
