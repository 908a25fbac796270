# The detection demo's schedule: the COCO optimizer at lr 4e-4 for batch 8
# with gradient clipping, 8 epochs (32 warm-up iterations, then cosine),
# one validation and checkpoint at the end, seeded.
_base_ = './coco_adamw_1x.py'

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=32),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
optim_wrapper = dict(
    optimizer=dict(lr=4e-4), clip_grad=dict(max_norm=10.0, norm_type=2))

default_hooks = dict(
    logger=dict(interval=8),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
