# CPU demo: Mask R-CNN on the embedded shapes data (COCO format, 5 classes),
# fine-tuned from the demo-pretrained MPVG classifier
# (configs/demo/mpvg-tiny_1xb64_demo-digits.py: 6 blocks, 96 wide, patch 4).
# Plain ViT (window attention, 2 global blocks) + ViTDet-style simple feature
# pyramid: about 1.6x faster per image than the adapter demo on 2 CPU
# cores, but it does NOT learn in a CPU budget: at 32x32 tokens the digits
# ViT's last map varies far more with position (the interpolated PEs) than
# with the image, and 8 epochs here still give bbox AP 0.000 (also with the
# adapter demo's lr 2e-3 and batch 4). README demo:
# mask-rcnn_mpvg-tiny-adapter_fpn_1xb4-8e_demo-shapes.py (inherits this file).
# Make the data with tools/dataset_converters/make_demo_data.py and train the
# classifier first (work_dirs/demo/mpvg-tiny_1xb64_demo-digits/epoch_30.pth).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

img_scale = 128  # the 256x256 images are shown at 128x128: 32x32 tokens
num_classes = 5
channels = 64
pretrained = 'work_dirs/demo/mpvg-tiny_1xb64_demo-digits/epoch_30.pth'

model = dict(
    data_preprocessor=dict(
        # the classifier was pretrained on pixels / 255
        mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=True,
        pad_mask=True, pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='MPVGViT',
        arch=dict(
            embed_dims=96, num_layers=6, num_heads=3,
            feedforward_channels=192),
        img_size=img_scale,  # pos_0: 8x8 (digits) -> 32x32 on load
        patch_size=4,
        pe_mode='mpvg',
        out_type='featmap',
        window_size=8,
        global_attn_indexes=(2, 5),
        drop_path_rate=0.05,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=96,
        out_channels=channels,
        # the stride-4 token map to strides 4, 8, 16, 32 (+ 64 for the RPN)
        scale_factors=(1.0, 0.5, 0.25, 0.125),
        num_outs=5,
        norm_cfg=dict(type='LN2d', eps=1e-6)),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        # objects are 9-64 px at 128x128: 16 px anchors at stride 4
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels, fc_out_channels=256,
            num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            num_convs=2, in_channels=channels, conv_out_channels=channels,
            num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(max_per_img=50)))

dataset_type = 'CocoDataset'
data_root = 'data/demo_shapes_coco/'
metainfo = dict(
    classes=('circle', 'ellipse', 'square', 'triangle', 'star'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 180, 0),
             (145, 30, 180)])
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(img_scale, img_scale), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(img_scale, img_scale), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

max_epochs = 8
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=32),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    # no decay on the PE (pos_embed), norms (incl. the PE LayerNorms) and
    # biases
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=10.0, norm_type=2))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=8),
    checkpoint=dict(type='CheckpointHook', interval=8, max_keep_ckpts=1))
log_processor = dict(by_epoch=True)
randomness = dict(seed=0)
