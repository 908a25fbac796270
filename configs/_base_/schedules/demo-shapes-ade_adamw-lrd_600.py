# The segmentation demo's schedule: the ADE20K recipe at 1/8 scale so that
# two CPU cores train it in minutes: lr 1e-3, layer decay 0.9, 50 warm-up
# iterations then poly decay to 600, one validation and checkpoint at the
# end, seeded.
_base_ = './ade20k_adamw-lrd_160k.py'

optim_wrapper = dict(
    optimizer=dict(lr=1e-3), paramwise_cfg=dict(layer_decay_rate=0.9))
max_iters = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)

default_hooks = dict(
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
