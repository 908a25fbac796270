# Plain-ViT alternative to the ViT-Adapter (no deformable attention): the
# DeiT-Ti MPVG ViT itself (window attention 14, blocks 2/5/8/11 global, as
# ViTDet) and a ViTDet-style simple feature pyramid from its last (stride-16)
# map to strides 4/8/16/32 (+64 for the RPN), replacing the FPN.
# Same data, schedule and optimizer as the ViT-Adapter-Ti configs.
# The backbone starts from
#   bash tools/dist_train.sh configs/mpvg/deit-tiny_mpvg_8xb128_in1k.py 8
# which writes work_dirs/deit-tiny_mpvg_8xb128_in1k/epoch_300.pth.
_base_ = ['./_base_/mask-rcnn_adapter-ti_fpn_8xb1-ms-crop-3x_coco.py']

pretrained = 'work_dirs/deit-tiny_mpvg_8xb128_in1k/epoch_300.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='MPVGViT',
        arch='deit-tiny',
        pe_mode='mpvg',
        img_size=1024,  # pos_0: 14x14 -> 64x64 on load
        patch_size=16,
        out_type='featmap',
        drop_path_rate=0.1,
        window_size=14,
        global_attn_indexes=(2, 5, 8, 11),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=192,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=dict(type='LN2d', eps=1e-6)))
