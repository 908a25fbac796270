# Paper ablation on DeiT-Ti: every block uses LN'_l(pos_0) instead of the
# chain.
_base_ = '../deit-tiny-mpvg_8xb128_in1k.py'

model = dict(backbone=dict(hierarchical_pe=False))
