# The paper's COCO optimizer on mmdet's 1x schedule (12 epochs, steps at 8
# and 11, 500 warm-up iterations): AdamW lr 1e-4, wd 0.05 for a total batch
# of 8; with mmdet's default runtime. Weight decay: configs/README.md.
_base_ = [
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,  # mmdet's SGD (momentum) is not an AdamW argument
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.pos_embed': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.level_embed': dict(decay_mult=0.0),
        }))

# tools/train.py --auto-scale-lr rescales lr for other total batches
auto_scale_lr = dict(enable=False, base_batch_size=8)
