# UperNet + auxiliary FCN head on ViT-Adapter-Ti (DeiT-Ti with MPVG's
# position embedding, all 12 blocks global attention) for ADE20K, with the
# recipe of the MPVG paper: crop 512, AdamW lr 12e-5, weight decay 0.01,
# layer-wise lr decay 0.95, 1500-iteration linear warm-up then poly decay,
# 160k iterations, batch 8 (4 GPUs x 2 images), slide inference (crop 512,
# stride 341). No weight decay on the PE (pos_embed, PE LayerNorms), norms,
# biases and the adapter's level embedding.
#
# The other PE modes (upernet_{cls,lape,pvg}-adapter-ti_*.py) inherit
# this file and change only `pe_mode` and the checkpoint.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

# The ImageNet-1K classifier of configs/mpvg/deit-tiny_mpvg_8xb128_in1k.py:
#   bash tools/dist_train.sh configs/mpvg/deit-tiny_mpvg_8xb128_in1k.py 8
# writes work_dirs/deit-tiny_mpvg_8xb128_in1k/epoch_300.pth. Its backbone is
# loaded with prefix 'backbone.'; pos_0 (14x14) is resized once to the 32x32
# grid of img_size=512, and a class-token checkpoint ('cls', 'lape') loses
# its class token (the adapter runs its ViT without one). A converted
# official DeiT / LaPE checkpoint (tools/model_converters/) works as well.
pretrained = 'work_dirs/deit-tiny_mpvg_8xb128_in1k/epoch_300.pth'

crop_size = (512, 512)
num_classes = 150
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MPVGViTAdapter',
        arch='deit-tiny',
        pe_mode='mpvg',
        img_size=512,
        patch_size=16,
        drop_path_rate=0.1,
        window_size=0,  # segmentation: global attention in every block
        global_attn_indexes=(),
        conv_inplane=64,
        n_points=4,
        deform_num_heads=6,
        cffn_ratio=0.25,
        deform_ratio=1.0,
        interaction_indexes=[[0, 2], [3, 5], [6, 8], [9, 11]],
        spm_norm_cfg=norm_cfg,
        out_norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(
        in_channels=[192, 192, 192, 192],
        channels=512,
        num_classes=num_classes,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=192,
        in_index=2,
        channels=256,
        num_classes=num_classes,
        norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=12e-5, betas=(0.9, 0.999), weight_decay=0.01),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.95,
        norm_decay_mult=0.0,  # every norm layer, the PE LayerNorms included
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,  # 1-D parameters such as the injectors' gamma
        custom_keys={
            '.pos_embed': dict(decay_mult=0.0),
            '.level_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1500,
         end=160000),
]

# 4 GPUs x 2 images = batch 8, as in the paper (ViT-Adapter's default is
# 16). Two images per process keep the UperNet pooling branch's 1x1 BN
# trainable on a single process too (one image gives it one value).
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=8)
