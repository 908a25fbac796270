# CPU demo: UperNet on the demo-pretrained MPVG backbone (the 6-block,
# 96-wide, patch-4 MPVG of configs/demo/mpvg-tiny_1xb64_demo-digits.py),
# fine-tuned for semantic segmentation on the embedded shapes data
# (data/demo_shapes_ade, ADE20K layout, 6 classes, 256x256 images; write it
# with tools/dataset_converters/make_demo_data.py).
#
# The segmentation recipe of configs/upernet/ at 1/8 scale, so that two CPU
# cores train it in a few minutes: images resized to 128x128 (random scale
# 0.5-2x when training), 64x64 crops, slide inference with crop 64 and
# stride 43 (512 / 341 in the ADE20K configs), AdamW with layer-wise lr decay,
# linear warm-up then poly decay.
#
# Why plain-ViT taps + MultiLevelNeck and not the ViT-Adapter: with a patch-4
# backbone on 64x64 crops, one training step (batch 8, one CPU thread) took
# 0.24 s with the taps against 0.90 s with a ViT-Adapter of the same ViT
# (conv_inplane 16, 4 interactions), so the adapter would need about 4x the
# time for the same number of steps. The full-size configs use the adapter.
#
# Measured (2 CPU cores shared with another job): 600 iterations + the final
# validation in 301 s; val mIoU 5.1 before fine-tuning (tools/test.py with
# the digits checkpoint: pretrained backbone, untrained heads) and 35.0
# after (sky 90, ground 93, circle 27 IoU; the other shapes not yet found).
_base_ = [
    'mmseg::_base_/models/upernet_vit-b16_ln_mln.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

# Produced by the classification demo (tools/run_demo.sh, or
# tools/train.py configs/demo/mpvg-tiny_1xb64_demo-digits.py); its 8x8
# pos_0 (32x32 images, patch 4) is resized to the 16x16 grid of 64x64 crops
# when it is loaded.
pretrained = 'work_dirs/demo/mpvg-tiny_1xb64_demo-digits/epoch_30.pth'

crop_size = (64, 64)
num_classes = 6
norm_cfg = dict(type='BN', requires_grad=True)  # one process, CPU
# The normalisation of the classification demo the backbone learnt with.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[0., 0., 0.],
    std=[255., 255., 255.],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MPVGViT',
        arch=dict(
            embed_dims=96, num_layers=6, num_heads=3,
            feedforward_channels=192),
        img_size=crop_size,
        patch_size=4,
        pe_mode='mpvg',
        out_type='featmap',
        # Four taps spread over the 6 blocks, as (2, 5, 8, 11) over 12.
        out_indices=(1, 2, 4, 5),
        drop_path_rate=0.05,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    # Patch 4: the taps are at stride 4; resize them to strides 4/8/16/32.
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[96, 96, 96, 96],
        out_channels=96,
        scales=[1, 0.5, 0.25, 0.125]),
    decode_head=dict(
        in_channels=[96, 96, 96, 96],
        channels=64,
        num_classes=num_classes,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=96,
        in_index=2,
        channels=32,
        num_classes=num_classes,
        norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(43, 43)))

dataset_type = 'BaseSegDataset'
data_root = 'data/demo_shapes_ade'
metainfo = dict(
    classes=('sky', 'ground', 'circle', 'square', 'triangle', 'star'),
    palette=[[70, 130, 180], [140, 110, 60], [220, 20, 60], [60, 180, 75],
             [255, 180, 0], [145, 30, 180]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(128, 128),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    # annotations after Resize: mIoU is computed at the original 256x256
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 600
warmup_iters = 50
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.9,
        norm_decay_mult=0.0,  # every LayerNorm, the PE LayerNorms included
        bias_decay_mult=0.0,
        custom_keys={'.pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False,
         begin=warmup_iters, end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
