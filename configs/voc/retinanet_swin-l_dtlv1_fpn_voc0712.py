_base_ = '../_base_/retinanet_swin-l_fpn_voc0712.py'
model = dict(
    backbone=dict(type='DTLSwinTransformer', variant='dtlv1', rank=128))
