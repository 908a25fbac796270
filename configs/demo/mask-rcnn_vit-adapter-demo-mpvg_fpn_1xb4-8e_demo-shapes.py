# CPU demo (tools/run_demo.sh): Mask R-CNN, a ViT-Adapter around the demo
# ViT (mpvg) + FPN, fine-tuned from the demo classifier on the shapes data
# (COCO format).
_base_ = [
    '../_base_/models/mask-rcnn_vit-adapter-demo_fpn.py',
    '../_base_/datasets/demo-shapes-coco_instance.py',
    '../_base_/schedules/demo-shapes-coco_adamw_8e.py',
]
custom_imports = dict(
    imports=['mmpvg', 'mmpvg.datasets.demo_shapes_coco'],
    allow_failed_imports=False)

pretrained = 'work_dirs/demo/vit-demo-mpvg_1xb64_demo-digits/epoch_30.pth'
model = dict(
    backbone=dict(pe_mode='mpvg', init_cfg=dict(checkpoint=pretrained)))

# The heads need a few hundred updates before AP rises: more, smaller steps
# at a higher lr than the schedule's batch 8 at 4e-4.
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
auto_scale_lr = dict(base_batch_size=4)
