# The Swin demo's schedule: the paper's Swin recipe (gradient clipping, no
# decay on the relative position bias tables) shortened as the
# classification demo's (30 epochs, 3 warm-up, lr 1e-3 for batch 64,
# validation and checkpoints every 5 epochs, seeded).
_base_ = './imagenet_bs1024_adamw_swin.py'

optim_wrapper = dict(optimizer=dict(lr=1e-3))
max_epochs = 30
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=3,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
auto_scale_lr = dict(base_batch_size=64)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=5, max_keep_ckpts=2))
randomness = dict(seed=0, deterministic=False)
