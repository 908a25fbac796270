# Paper ablation on DeiT-Ti: GAP plus LN'_last(pos_0) at the Last LN, without
# the layer-wise PE (Fig. 5b).
_base_ = '../deit-tiny-gap_8xb128_in1k.py'

model = dict(backbone=dict(last_ln_pe=0))
