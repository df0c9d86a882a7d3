_base_ = '../_base_/cascade-mask-rcnn_swin-b_fpn_3x_coco.py'
model = dict(
    backbone=dict(type='DTLSwinTransformer', variant='dtlv2-ls', rank=256))
