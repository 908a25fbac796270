_base_ = './deit-tiny_cls_8xb128_in1k.py'

model = dict(backbone=dict(arch='deit-small'), head=dict(in_channels=384))
