# The segmentation demo's schedule shortened to 300 iterations (30 warm-up,
# then poly decay), one validation and checkpoint at the end.
_base_ = './demo-shapes-ade_adamw-lrd_600.py'

max_iters = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=30),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=30,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
