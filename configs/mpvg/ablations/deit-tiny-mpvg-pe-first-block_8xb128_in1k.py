# Paper ablation on DeiT-Ti: the PE chain also reaches block 0.
_base_ = '../deit-tiny-mpvg_8xb128_in1k.py'

model = dict(backbone=dict(pe_first_block=True))
