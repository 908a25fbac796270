# T2T-ViT-7 fine-tuned on CIFAR-100 from its ImageNet-1K checkpoint (EMA
# weights), 1 GPU x 128. PVG: GAP, x + PE at the input, PE-LN chain in blocks
# 1..6.
_base_ = [
    '../_base_/models/t2t-vit-7.py',
    '../_base_/datasets/cifar100_bs128_t2t-224.py',
    '../_base_/schedules/cifar100_bs128_sgd_t2t-ft.py',
]

pretrained = 'work_dirs/t2t-vit-7-pvg_8xb64_in1k/epoch_310.pth'
model = dict(
    backbone=dict(
        pe_mode='pvg',
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    # the transfer script: 100 classes, plain cross-entropy, no mixup
    head=dict(num_classes=100, loss=dict(label_smooth_val=0.0)),
    train_cfg=None)
