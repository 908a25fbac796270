# Mask R-CNN with a ViT-Adapter-Ti (MPVGViTAdapter around DeiT-Ti) and FPN,
# the MPVG paper's COCO detector. Window attention 14 with blocks 2/5/8/11
# global, as ViT-Adapter does for detection.
# The leaf sets pe_mode and the ImageNet-1K checkpoint (init_cfg.checkpoint);
# class-token modes run without the class token (it and its PE row are
# dropped on load), and pos_0 (14x14 at 224) is resized to the 64x64 grid of
# img_size=1024 on load and interpolated to other grids at run time.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
custom_imports = dict(imports=['mmpvg'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # replaces mmdet's ResNet-50
        type='MPVGViTAdapter',
        arch='deit-tiny',
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
        init_cfg=dict(type='Pretrained', prefix='backbone.')),
    neck=dict(in_channels=[192, 192, 192, 192]))
