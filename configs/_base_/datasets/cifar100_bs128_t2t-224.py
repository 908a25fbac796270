# CIFAR-100 for fine-tuning T2T-ViT, as T2T-ViT's transfer script: images
# resized to 224, RandomCrop(224, padding 28) and horizontal flips for
# training, its CIFAR mean / std; 128 images per batch.
_base_ = 'mmpretrain::_base_/datasets/cifar100_bs16.py'

data_preprocessor = dict(
    num_classes=100,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=False)  # mmpretrain's CIFAR images are RGB already

train_pipeline = [
    dict(type='Resize', scale=224, backend='pillow', interpolation='bilinear'),
    dict(type='RandomCrop', crop_size=224, padding=28),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=224, backend='pillow', interpolation='bilinear'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
