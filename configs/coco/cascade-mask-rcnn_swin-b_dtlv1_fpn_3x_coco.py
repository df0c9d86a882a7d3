_base_ = '../_base_/cascade-mask-rcnn_swin-b_fpn_3x_coco.py'
model = dict(
    backbone=dict(type='DTLSwinTransformer', variant='dtlv1', rank=256))
