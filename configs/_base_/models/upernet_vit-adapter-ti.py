# UperNet + auxiliary FCN head on a ViT-Adapter-Ti (MPVGViTAdapter around
# DeiT-Ti, global attention in every block, as ViT-Adapter does for
# segmentation), set up for ADE20K at 512x512: 150 classes, slide inference
# with crop 512 and stride 341.
# The leaf sets pe_mode and the ImageNet-1K checkpoint (init_cfg.checkpoint);
# pos_0 (14x14 at 224) is resized to the 32x32 grid of img_size=512 on load,
# and class-token modes lose their class token (the adapter runs without).
_base_ = 'mmseg::_base_/models/upernet_r50.py'
# the visualizer of the schedule recipe (mmseg's, for any image layout)
custom_imports = dict(
    imports=['mmpvg', 'mmpvg.visualization.seg_local_visualizer'],
    allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(size=(512, 512))
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,  # replaces mmseg's ResNet-50
        type='MPVGViTAdapter',
        arch='deit-tiny',
        img_size=512,
        patch_size=16,
        drop_path_rate=0.1,
        window_size=0,
        global_attn_indexes=(),
        conv_inplane=64,
        n_points=4,
        deform_num_heads=6,
        cffn_ratio=0.25,
        deform_ratio=1.0,
        interaction_indexes=[[0, 2], [3, 5], [6, 8], [9, 11]],
        spm_norm_cfg=norm_cfg,
        out_norm_cfg=norm_cfg,
        init_cfg=dict(type='Pretrained', prefix='backbone.')),
    decode_head=dict(
        in_channels=[192, 192, 192, 192],
        channels=512,
        num_classes=150,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=192,
        in_index=2,
        channels=256,
        num_classes=150,
        norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
