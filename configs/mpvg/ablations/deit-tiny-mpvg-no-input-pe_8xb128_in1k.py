# Paper ablation on DeiT-Ti: no x + PE at the input (PE only through the layer-
# wise path).
_base_ = '../deit-tiny-mpvg_8xb128_in1k.py'

model = dict(backbone=dict(pe_at_input=False))
