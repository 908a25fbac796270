# ADE20K as mmseg's base (crop 512x512), 2 images per GPU: the paper's batch
# 8 is 4 GPUs x 2. Two images per process also keep the UperNet pooling
# branch's 1x1 BatchNorm trainable on one process (one image gives it one
# value per channel).
_base_ = 'mmseg::_base_/datasets/ade20k.py'

train_dataloader = dict(batch_size=2)
