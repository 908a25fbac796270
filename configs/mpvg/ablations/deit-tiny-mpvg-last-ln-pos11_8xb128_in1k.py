# Paper ablation on DeiT-Ti: LN'_last(pos_11) instead of pos_0 reaches the Last
# LN.
_base_ = '../deit-tiny-mpvg_8xb128_in1k.py'

model = dict(backbone=dict(last_ln_pe=11))
