# T2T-ViT recipe as used by the MPVG paper: AdamW lr 1e-3 for batch 512 (the
# paper does not scale it), wd 0.03; 10 warm-up epochs from 1e-6, cosine to
# 1e-5 until epoch 300, then 10 cool-down epochs at 1e-5 ("300+10", timm's
# cool-down as T2T-ViT trains); an EMA of the weights (T2T-ViT's model EMA,
# decay 0.99996), which checkpoints store as their state_dict. With
# mmpretrain's default runtime. Weight decay: configs/README.md.
_base_ = 'mmpretrain::_base_/default_runtime.py'

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.03, eps=1e-8,
                   betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.pos_embed': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.level_embed': dict(decay_mult=0.0),
        }),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=10,
         end=300, convert_to_iter_based=True),
    # epochs 300-310 keep the final lr (eta_min): the cool-down.
]

train_cfg = dict(by_epoch=True, max_epochs=310, val_interval=1)
val_cfg = dict()
test_cfg = dict()
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')]
auto_scale_lr = dict(base_batch_size=512)

# mmpretrain's visualizer again, written here: the copy inherited through
# `mmpretrain::` carries mmengine's `_scope_` key, which mmpretrain's
# browse_dataset passes on to UniversalVisualizer as an unknown argument.
visualizer = dict(
    _delete_=True,
    type='UniversalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')])
