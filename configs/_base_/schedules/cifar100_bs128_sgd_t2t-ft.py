# The paper's CIFAR-100 fine-tuning of T2T-ViT (T2T-ViT's transfer script):
# SGD, momentum 0.9, wd 5e-4, lr 0.05 for the head and 0.01 x 0.05 for the
# T2T module and the blocks, cosine over 60 epochs to 2e-4 (every group),
# stepped per epoch; with mmpretrain's default runtime.
#
# The base lr is the backbone's (5e-4) and the head has lr_mult 100, so that
# every backbone parameter keeps the weight-decay rule of configs/README.md
# (a custom key replaces it for the parameters it matches).
# What is trained: the official script optimises only the T2T module, the
# blocks and the head, never the final norm, the class token or pos_0 (fixed
# anyway). Here the PE LayerNorms of LaPE / PVG / MPVG train with their
# blocks at the backbone rate (they are part of each block's attention
# input), while the final norm, the class token and MPVG's LN'_last (the
# Last-LN term, part of the network's output with the final norm) are kept
# as the ImageNet checkpoint has them (lr 0).
_base_ = 'mmpretrain::_base_/default_runtime.py'

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05 * 0.01, momentum=0.9,
                   weight_decay=5e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.pos_embed': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.level_embed': dict(decay_mult=0.0),
            'head.fc.weight': dict(lr_mult=100.0),
            'head.fc.bias': dict(lr_mult=100.0, decay_mult=0.0),
            'backbone.norm.': dict(lr_mult=0.0, decay_mult=0.0),
            'backbone.cls_token': dict(lr_mult=0.0, decay_mult=0.0),
            'backbone.pe.last_norm.': dict(lr_mult=0.0, decay_mult=0.0),
        }),
)

param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=60, eta_min=2e-4, by_epoch=True,
         begin=0, end=60),
]

train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
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
