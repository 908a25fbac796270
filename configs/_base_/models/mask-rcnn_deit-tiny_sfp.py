# Mask R-CNN with the plain DeiT-Ti MPVGViT (no adapter, no deformable
# attention) and a ViTDet-style simple feature pyramid: the last stride-16
# map resized to strides 4/8/16/32 (+64 for the RPN). Window attention 14
# with blocks 2/5/8/11 global, as the ViT-Adapter-Ti fragment.
# The leaf sets pe_mode and the ImageNet-1K checkpoint (init_cfg.checkpoint).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # replaces mmdet's ResNet-50
        type='MPVGViT',
        arch='deit-tiny',
        img_size=1024,  # pos_0: 14x14 -> 64x64 on load
        patch_size=16,
        out_type='featmap',
        drop_path_rate=0.1,
        window_size=14,
        global_attn_indexes=(2, 5, 8, 11),
        init_cfg=dict(type='Pretrained', prefix='backbone.')),
    neck=dict(
        _delete_=True,  # replaces mmdet's FPN
        type='SimpleFeaturePyramid',
        in_channels=192,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=dict(type='LN2d', eps=1e-6)))
