_base_ = '../_base_/cascade-mask-rcnn_deit-b_mln_3x_coco.py'
# M = 7 of 12 blocks; G adds back at blocks 7, 9 and 12, so the single
# output (block 12) carries the side signal; d' as the Swin COCO configs
model = dict(
    backbone=dict(type='DTLVisionTransformer', variant='dtlv2-ls', rank=256))
