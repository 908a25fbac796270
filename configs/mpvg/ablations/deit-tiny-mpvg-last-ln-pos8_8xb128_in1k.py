# Paper ablation on DeiT-Ti: LN'_last(pos_8) instead of pos_0 reaches the Last
# LN.
_base_ = '../deit-tiny-mpvg_8xb128_in1k.py'

model = dict(backbone=dict(last_ln_pe=8))
