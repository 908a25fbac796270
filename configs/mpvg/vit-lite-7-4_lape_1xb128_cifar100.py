_base_ = './vit-lite-7-4_cls_1xb128_cifar100.py'

model = dict(backbone=dict(pe_mode='lape'))
