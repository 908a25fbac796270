# The paper's COCO 3x schedule: 36 epochs, steps at 27 and 33, 1000 warm-up
# iterations; optimizer and runtime as coco_adamw_1x.py.
_base_ = './coco_adamw_1x.py'

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1),
]
