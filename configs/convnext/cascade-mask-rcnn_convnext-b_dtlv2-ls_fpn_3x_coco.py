_base_ = '../_base_/cascade-mask-rcnn_convnext-b_fpn_3x_coco.py'
# M = 19 of 36 blocks (the default: the middle block); d' as the Swin-B
# COCO configs
model = dict(backbone=dict(type='DTLConvNeXt', variant='dtlv2-ls', rank=256))
