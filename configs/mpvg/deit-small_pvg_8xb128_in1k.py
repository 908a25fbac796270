_base_ = './deit-small_cls_8xb128_in1k.py'

model = dict(backbone=dict(pe_mode='pvg'))
