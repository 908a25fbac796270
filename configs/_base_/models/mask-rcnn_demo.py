# Mask R-CNN heads sized for the demo shapes (5 classes, 64 channels, small
# anchors), with the input normalisation the demo classifier learnt with.
# Shared by mask-rcnn_vit-demo_sfp.py and mask-rcnn_vit-adapter-demo_fpn.py,
# which replace mmdet's ResNet-50 (and FPN) by the demo backbone.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

model = dict(
    data_preprocessor=dict(
        # the demo classifier was trained on pixels / 255
        mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=True,
        pad_mask=True, pad_size_divisor=32),
    neck=dict(out_channels=64),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        # objects are 9-64 px at 128x128: 16 px anchors at stride 4
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=5),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(
            num_convs=2, in_channels=64, conv_out_channels=64,
            num_classes=5)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=200),
        # COCO AP ranks all detections: keep the low-scoring ones too
        rcnn=dict(max_per_img=50, score_thr=0.001)))
