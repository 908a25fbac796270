# The segmentor that tools/run_demo.sh fine-tunes from the 12-epoch demo
# classifier: UperNet, the demo ViT (mpvg) tapped after blocks 1/2/4/5 +
# MultiLevelNeck, on the shapes data (ADE20K layout), 300 iterations on 64x64
# crops.
_base_ = [
    '../_base_/models/upernet_vit-demo_mln.py',
    '../_base_/datasets/demo-shapes-ade_64x64.py',
    '../_base_/schedules/demo-shapes-ade_adamw-lrd_300.py',
]
custom_imports = dict(
    imports=['mmpvg', 'mmpvg.datasets.demo_shapes_ade',
             'mmpvg.visualization.seg_local_visualizer'],
    allow_failed_imports=False)

pretrained = 'work_dirs/demo/vit-demo-mpvg_1xb64-12e_demo-digits/epoch_12.pth'
model = dict(
    backbone=dict(pe_mode='mpvg', init_cfg=dict(checkpoint=pretrained)))
