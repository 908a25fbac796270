# COCO 2017 instance segmentation as mmdet's base (single scale 1333x800),
# one image per GPU: the paper's batch 8 is 8 GPUs x 1 image.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

train_dataloader = dict(batch_size=1)
