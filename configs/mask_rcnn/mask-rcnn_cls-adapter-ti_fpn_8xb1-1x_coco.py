# Mask R-CNN, ViT-Adapter-Ti around DeiT-Ti with pe_mode='cls', FPN,
# 1x schedule, COCO 2017; batch 8 (8 GPUs x 1 image).
# (Class-token modes run without their class token; its PE row is dropped
# on load)
# The backbone starts from the ImageNet-1K classifier of the same pe_mode:
#   bash tools/dist_train.sh configs/mpvg/deit-tiny_cls_8xb128_in1k.py 8
# which writes work_dirs/deit-tiny_cls_8xb128_in1k/epoch_300.pth.
_base_ = ['./_base_/mask-rcnn_adapter-ti_fpn_8xb1-1x_coco.py']

pretrained = 'work_dirs/deit-tiny_cls_8xb128_in1k/epoch_300.pth'
model = dict(
    backbone=dict(
        pe_mode='cls',
        init_cfg=dict(checkpoint=pretrained)))
