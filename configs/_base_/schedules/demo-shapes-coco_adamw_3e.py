# The detection demo's schedule shortened to 3 epochs (32 warm-up
# iterations, then cosine), one validation and checkpoint at the end.
_base_ = './demo-shapes-coco_adamw_8e.py'

max_epochs = 3
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=32),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
