# Mask R-CNN, ViT-Adapter-Ti (cls) + FPN, COCO 2017,
# 1x schedule, single-scale training.
_base_ = [
    '../_base_/models/mask-rcnn_vit-adapter-ti_fpn.py',
    '../_base_/datasets/coco_instance_bs1.py',
    '../_base_/schedules/coco_adamw_1x.py',
]

pretrained = 'work_dirs/deit-tiny-cls_8xb128_in1k/epoch_300.pth'
model = dict(
    backbone=dict(pe_mode='cls', init_cfg=dict(checkpoint=pretrained)))
