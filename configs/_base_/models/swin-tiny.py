# MPVGSwin Swin-Ti classifier for ImageNet-1K: mmpretrain's swin-tiny model
# (drop path 0.2, GAP neck, label smoothing 0.1, mixup 0.8, cutmix 1.0)
# with the absolute PE the paper's Default Swin uses (pos_0, in every mode)
# and the relative position bias. pe_mode is set by the leaf.
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MPVGSwin', arch='tiny', img_size=224, drop_path_rate=0.2),
    # pools norm3's map, which holds MPVG's Last-LN term
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        init_cfg=None,  # the classifier's init_cfg below covers the head
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]),
)
