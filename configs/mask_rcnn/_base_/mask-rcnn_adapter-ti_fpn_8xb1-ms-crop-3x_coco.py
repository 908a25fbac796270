# Shared settings of the COCO Mask R-CNN configs with a ViT-Adapter-Ti
# (DeiT-Ti, MPVGViTAdapter) backbone: the paper's downstream recipe.
# 3x schedule (36 epochs) + DETR-style multi-scale training with a 1024 crop,
# AdamW lr 1e-4, weight decay 0.05 (none on the PE, norms incl. the PE
# LayerNorms, biases and the adapter's level embedding), batch 8 in total
# (8 GPUs x 1 image). The per-mode configs set `pe_mode` and `pretrained`.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

pe_mode = 'mpvg'
# The ImageNet-1K classifier of the same pe_mode, e.g. made with
#   bash tools/dist_train.sh configs/mpvg/deit-tiny_mpvg_8xb128_in1k.py 8
# (its work dir is work_dirs/deit-tiny_mpvg_8xb128_in1k/).
pretrained = 'work_dirs/deit-tiny_mpvg_8xb128_in1k/epoch_300.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MPVGViTAdapter',
        arch='deit-tiny',
        pe_mode=pe_mode,
        # pos_0 of the 224 classifier (14x14) is resized to the 1024 crop's
        # 64x64 grid on load, and interpolated to other grids at run time.
        img_size=1024,
        patch_size=16,
        drop_path_rate=0.1,
        window_size=14,
        global_attn_indexes=(2, 5, 8, 11),
        conv_inplane=64,
        n_points=4,
        deform_num_heads=6,
        cffn_ratio=0.25,
        deform_ratio=1.0,
        interaction_indexes=[[0, 2], [3, 5], [6, 8], [9, 11]],
        spm_norm_cfg=dict(type='SyncBN', requires_grad=True),
        out_norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='FPN', in_channels=[192, 192, 192, 192],
              out_channels=256, num_outs=5))

# augmentation strategy originates from DETR / Sparse R-CNN, plus a final
# 1024x1024 crop (ViT-Adapter)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[[
            dict(
                type='RandomChoiceResize',
                scales=[(480, 1333), (512, 1333), (544, 1333), (576, 1333),
                        (608, 1333), (640, 1333), (672, 1333), (704, 1333),
                        (736, 1333), (768, 1333), (800, 1333)],
                keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[(400, 1333), (500, 1333), (600, 1333)],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='absolute_range',
                            crop_size=(384, 600),
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=[(480, 1333), (512, 1333), (544, 1333),
                                    (576, 1333), (608, 1333), (640, 1333),
                                    (672, 1333), (704, 1333), (736, 1333),
                                    (768, 1333), (800, 1333)],
                            keep_ratio=True)
                    ]]),
    dict(
        type='RandomCrop',
        crop_type='absolute',
        crop_size=(1024, 1024),
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))

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

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    # norm_decay_mult covers every LayerNorm/BatchNorm/GroupNorm, including
    # the PE LayerNorms (backbone.pe.norms.*, backbone.pe.last_norm)
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        }))

# 8 GPUs x 1 image; tools/train.py --auto-scale-lr rescales lr for others
auto_scale_lr = dict(enable=False, base_batch_size=8)
