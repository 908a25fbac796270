# Swin recipe as used by the MPVG paper: AdamW lr 1e-3 for batch 1024, wd
# 0.05, 300 epochs, 20 warm-up epochs, cosine to 1e-5; otherwise mmpretrain's
# swin-tiny_16xb64_in1k (gradient clipping at norm 5), with mmpretrain's
# default runtime. Weight decay: configs/README.md, plus none on the
# relative position bias tables (as mmpretrain's Swin schedule).
_base_ = [
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

optim_wrapper = dict(
    optimizer=dict(lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.pos_embed': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.level_embed': dict(decay_mult=0.0),
            '.relative_position_bias_table': dict(decay_mult=0.0),
        }),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20),
]

train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)

# mmpretrain's visualizer again, written here: the copy inherited through
# `mmpretrain::` carries mmengine's `_scope_` key, which mmpretrain's
# browse_dataset passes on to UniversalVisualizer as an unknown argument.
visualizer = dict(
    _delete_=True,
    type='UniversalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')])
