# The paper's ADE20K recipe on mmseg's 160k schedule: AdamW lr 12e-5, wd
# 0.01, layer-wise lr decay 0.95, 1500 linear warm-up iterations then poly
# decay, for a total batch of 8; with mmseg's default runtime. Weight decay:
# configs/README.md.
_base_ = [
    'mmseg::_base_/schedules/schedule_160k.py',
    'mmseg::_base_/default_runtime.py',
]

optim_wrapper = dict(
    _delete_=True,  # mmseg's SGD wrapper
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=12e-5, betas=(0.9, 0.999), weight_decay=0.01),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.95,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.pos_embed': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.level_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1500,
         end=160000),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)

# mmseg's visualizer, drawing on a contiguous copy of the image (mmseg's
# browse_dataset hands it a strided view that OpenCV cannot draw on); the
# model fragments import its module (custom_imports).
visualizer = dict(type='MPVGSegLocalVisualizer')
