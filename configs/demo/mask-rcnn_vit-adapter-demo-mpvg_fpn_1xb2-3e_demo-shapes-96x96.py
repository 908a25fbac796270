# The detector that tools/run_demo.sh fine-tunes from the 12-epoch demo
# classifier: the ViT-Adapter demo (mpvg) at 96x96 with batch 2 for 3
# epochs. From the same classifier, batch 2 at 96x96 learnt the most per
# second of the settings measured (README "Set-up and the two commands").
_base_ = [
    '../_base_/models/mask-rcnn_vit-adapter-demo_fpn.py',
    '../_base_/datasets/demo-shapes-coco_instance-96x96.py',
    '../_base_/schedules/demo-shapes-coco_adamw_3e.py',
]
custom_imports = dict(
    imports=['mmpvg', 'mmpvg.datasets.demo_shapes_coco'],
    allow_failed_imports=False)

pretrained = 'work_dirs/demo/vit-demo-mpvg_1xb64-12e_demo-digits/epoch_12.pth'
model = dict(
    backbone=dict(
        pe_mode='mpvg', img_size=96, init_cfg=dict(checkpoint=pretrained)))

train_dataloader = dict(batch_size=2)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
auto_scale_lr = dict(base_batch_size=2)
