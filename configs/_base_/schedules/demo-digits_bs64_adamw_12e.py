# The classification demo's schedule shortened to 12 epochs (2 warm-up),
# validation and checkpoints every 4: the classifier that tools/run_demo.sh
# pretrains in about a minute.
_base_ = './demo-digits_bs64_adamw_30e.py'

max_epochs = 12
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=2,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
default_hooks = dict(checkpoint=dict(interval=4))
