_base_ = './deit-base_cls_8xb128_in1k.py'

model = dict(backbone=dict(pe_mode='pvg'))
