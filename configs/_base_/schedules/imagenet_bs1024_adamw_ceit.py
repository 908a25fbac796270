# CeiT recipe as used by the MPVG paper: the DeiT one (AdamW, lr 5e-4 x
# batch / 512, wd 0.05, 300 epochs, 5 warm-up). The LCA's layer embedding is
# an embedding like pos_0, so it is not decayed either.
_base_ = './imagenet_bs1024_adamw_deit.py'

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.layer_embed': dict(decay_mult=0.0)}))
