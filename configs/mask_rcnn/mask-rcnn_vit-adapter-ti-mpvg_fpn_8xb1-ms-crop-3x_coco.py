# Mask R-CNN, ViT-Adapter-Ti (mpvg) + FPN, COCO 2017,
# 3x schedule, multi-scale training with a 1024 crop.
_base_ = [
    '../_base_/models/mask-rcnn_vit-adapter-ti_fpn.py',
    '../_base_/datasets/coco_instance_bs1_ms-crop-1024.py',
    '../_base_/schedules/coco_adamw_3x.py',
]

pretrained = 'work_dirs/deit-tiny-mpvg_8xb128_in1k/epoch_300.pth'
model = dict(
    backbone=dict(pe_mode='mpvg', init_cfg=dict(checkpoint=pretrained)))
