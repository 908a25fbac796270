# The paper's CIFAR-100 ViT-Lite recipe: AdamW lr 6e-4, wd 0.06, batch 128,
# 300 cosine epochs after 10 warm-up epochs, then 10 cool-down epochs at the
# minimum lr ("300+10"); with mmpretrain's default runtime. Weight decay:
# configs/README.md.
_base_ = 'mmpretrain::_base_/default_runtime.py'

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=6e-4, weight_decay=0.06, eps=1e-8,
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
auto_scale_lr = dict(base_batch_size=128)

# mmpretrain's visualizer again, written here: the copy inherited through
# `mmpretrain::` carries mmengine's `_scope_` key, which mmpretrain's
# browse_dataset passes on to UniversalVisualizer as an unknown argument.
visualizer = dict(
    _delete_=True,
    type='UniversalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')])
