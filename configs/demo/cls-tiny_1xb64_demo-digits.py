# The CPU demo with pe_mode='cls' instead of 'mpvg' (same data, recipe).
_base_ = './mpvg-tiny_1xb64_demo-digits.py'

model = dict(backbone=dict(pe_mode='cls'))
