# CPU demo: Mask R-CNN, the demo ViT (mpvg) + simple feature pyramid,
# fine-tuned from the demo classifier on the shapes data (COCO format).
# It does not learn in a CPU budget (README); the adapter demo does.
_base_ = [
    '../_base_/models/mask-rcnn_vit-demo_sfp.py',
    '../_base_/datasets/demo-shapes-coco_instance.py',
    '../_base_/schedules/demo-shapes-coco_adamw_8e.py',
]
custom_imports = dict(
    imports=['mmpvg', 'mmpvg.datasets.demo_shapes_coco'],
    allow_failed_imports=False)

pretrained = 'work_dirs/demo/vit-demo-mpvg_1xb64_demo-digits/epoch_30.pth'
model = dict(
    backbone=dict(pe_mode='mpvg', init_cfg=dict(checkpoint=pretrained)))
