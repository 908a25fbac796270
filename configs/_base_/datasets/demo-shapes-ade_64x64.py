# The segmentation demo data in ADE20K layout (256x256 images, label 0 =
# unlabelled), written by tools/dataset_converters/make_demo_data.py, on
# mmseg's ADE20K base at 1/8 scale: images resized to 128x128 (random scale
# 0.5-2x when training) and 64x64 crops. DemoShapesADE20KDataset takes its
# classes from the generator and defaults to reduce_zero_label=True; the
# leaf imports it (custom_imports 'mmpvg.datasets.demo_shapes_ade').
_base_ = 'mmseg::_base_/datasets/ade20k.py'

dataset_type = 'DemoShapesADE20KDataset'
data_root = 'data/demo_shapes_ade'
crop_size = (64, 64)
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
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
